# Cython declarations augmenting decide.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object. Each branch of
# ``decide`` names the command as its own struct (engine/structs.pxd), so its fields are
# read at their offsets, and calls its rule, cimported, through a C call.
cimport cython
cimport engine.structs as structs
from engine cimport accounts, oracle, positions, tick
from engine.context cimport Ctx
from engine.rfq cimport lifecycle
from engine.risk cimport liquidation, margin
from engine.state cimport State

@cython.locals(submit=structs.SubmitQuote, request=structs.RequestQuote, accept=structs.AcceptQuote,
               close=structs.ClosePosition, cancel_quote=structs.CancelQuote, cancel_rfq=structs.CancelRfq,
               deposit=structs.Deposit, withdraw=structs.Withdraw, add=structs.AddMargin, remove=structs.RemoveMargin,
               liquidate=structs.Liquidate, cancel_all=structs.CancelAgentQuotes)
cpdef decide(State state, command, ts_ns, cmd_id)
cpdef _agent_refusal(State state, actor, client_id, signature, ts_ns)
cpdef _check_client_id_and_signature(State state, actor, client_id, signature, ts_ns)
