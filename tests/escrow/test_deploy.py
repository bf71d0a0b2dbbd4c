"""Deploy the built program the way a real cluster does — through BPFLoaderUpgradeable
(InitializeBuffer, Write chunks, DeployWithMaxDataLen) — so the strict deploy-time ELF
checks and the verifier run on it, then call it."""

from __future__ import annotations

import struct

from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import FeatureSet, LiteSVM
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account

from tests.escrow.harness import ERRORS, World

LOADER_ID = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
RENT_SYSVAR = Pubkey.from_string("SysvarRent111111111111111111111111111111111")
CLOCK_SYSVAR = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
BUFFER_METADATA = 37  # enum tag u32 + Option<Pubkey> authority
PROGRAM_ACCOUNT_SIZE = 36  # enum tag u32 + programdata address
CHUNK = 900  # keeps each Write transaction under the 1232-byte packet limit
# LiteSVM activates every feature, including `disable_new_loader_v3_deployments` (not active
# on mainnet as of this writing), which refuses DeployWithMaxDataLen outright. The deploy
# tests run with every other feature on, so every deploy-time ELF check still applies.
DISABLE_NEW_LOADER_V3_DEPLOYMENTS = Pubkey.from_string("EmhbpdVtZ2hWRGFWBDjn2i3SJD8Z36z4mpMcZJEnebnP")


def deploy_world(program_path) -> World:
    everything = FeatureSet.all_enabled()
    active = {k: v for k, v in everything.active.items() if k != DISABLE_NEW_LOADER_V3_DEPLOYMENTS}
    features = FeatureSet(active, {DISABLE_NEW_LOADER_V3_DEPLOYMENTS})
    svm = (LiteSVM.default().with_builtins(features).with_precompiles(features).with_sysvars()
           .with_spl_programs().with_lamports(10**18).with_sigverify(True).with_blockhash_check(True))
    return World(program_path, initialize=False, svm=svm)


def deploy(world: World, elf: bytes) -> Pubkey:
    svm, payer = world.svm, world.payer
    buffer, program = Keypair(), Keypair()
    buffer_size = BUFFER_METADATA + len(elf)
    world.send([
        create_account(CreateAccountParams(from_pubkey=payer.pubkey(), to_pubkey=buffer.pubkey(),
                                           lamports=svm.minimum_balance_for_rent_exemption(buffer_size),
                                           space=buffer_size, owner=LOADER_ID)),
        Instruction(LOADER_ID, struct.pack("<I", 0),  # InitializeBuffer
                    [AccountMeta(buffer.pubkey(), False, True), AccountMeta(payer.pubkey(), False, False)]),
    ], [buffer])
    for offset in range(0, len(elf), CHUNK):
        chunk = elf[offset:offset + CHUNK]
        data = struct.pack("<IIQ", 1, offset, len(chunk)) + chunk  # Write
        world.send([Instruction(LOADER_ID, data, [AccountMeta(buffer.pubkey(), False, True),
                                                   AccountMeta(payer.pubkey(), True, False)])], [])
    programdata = Pubkey.find_program_address([bytes(program.pubkey())], LOADER_ID)[0]
    world.send([
        create_account(CreateAccountParams(from_pubkey=payer.pubkey(), to_pubkey=program.pubkey(),
                                           lamports=svm.minimum_balance_for_rent_exemption(PROGRAM_ACCOUNT_SIZE),
                                           space=PROGRAM_ACCOUNT_SIZE, owner=LOADER_ID)),
        Instruction(LOADER_ID, struct.pack("<IQ", 2, len(elf)), [  # DeployWithMaxDataLen
            AccountMeta(payer.pubkey(), True, True), AccountMeta(programdata, False, True),
            AccountMeta(program.pubkey(), False, True), AccountMeta(buffer.pubkey(), False, True),
            AccountMeta(RENT_SYSVAR, False, False), AccountMeta(CLOCK_SYSVAR, False, False),
            AccountMeta(SYSTEM_PROGRAM_ID, False, False), AccountMeta(payer.pubkey(), True, False)]),
    ], [program])
    return program.pubkey()


def test_deploy_through_the_upgradeable_loader(program_path):
    world = deploy_world(program_path)
    elf = program_path.read_bytes()
    program_id = deploy(world, elf)
    account = world.svm.get_account(program_id)
    assert account.executable and account.owner == LOADER_ID
    world.svm.warp_to_slot(world.svm.get_clock().slot + 1)  # deployments take effect from the next slot
    # It runs: an unknown discriminator comes back as the program's own error.
    assert world.error_of([Instruction(program_id, bytes(8), [])], []) == ERRORS["UnknownInstruction"]


def test_deploy_refuses_a_corrupted_program(program_path):
    """The loader's checks are real: a program whose entrypoint points outside .text fails."""
    world = deploy_world(program_path)
    elf = bytearray(program_path.read_bytes())
    struct.pack_into("<Q", elf, 24, len(elf) + 8)  # e_entry beyond the file
    try:
        deploy(world, bytes(elf))
    except AssertionError as exc:
        assert "Entrypoint out of bounds" in str(exc), str(exc)
    else:
        raise AssertionError("a corrupted ELF was deployed")
