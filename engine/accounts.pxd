# Cython declarations augmenting accounts.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
cimport engine.structs as structs
from engine.context cimport Ctx, transfer
from engine.state cimport State

cpdef decide_deposit(State state, structs.Deposit c, Ctx ctx)
cpdef decide_withdraw(State state, structs.Withdraw c, Ctx ctx)
