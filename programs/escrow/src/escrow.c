/* agentperp escrow: holds the agents' USDC and checks, by itself, everything it can.
 *
 * Instructions and accounts are described in ../README.md and ../idl.json. Money follows
 * DESIGN §3-§4 exactly: integer micro-USDC, prices in 1e-8 USD, one half-even rounding. */
#include "layout.h"
#include "oracle.h"
#include "wide.h"

static const uint8_t SYSTEM_PROGRAM_ID[32] __attribute__((aligned(8))) = {0};
/* TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA */
static const uint8_t TOKEN_PROGRAM_ID[32] __attribute__((aligned(8))) = {
    0x06, 0xdd, 0xf6, 0xe1, 0xd7, 0x65, 0xa1, 0x93, 0xd9, 0xcb, 0xe1, 0x46, 0xce, 0xeb, 0x79, 0xac,
    0x1c, 0xb4, 0x85, 0xed, 0x5f, 0x5b, 0x37, 0x91, 0x3a, 0x8c, 0xf5, 0x85, 0x7e, 0xff, 0x00, 0xa9};

static const uint8_t SEED_CONFIG[] = "config";
static const uint8_t SEED_AGENT[] = "agent";
static const uint8_t SEED_POSITION[] = "position";

/* Rent exemption at the runtime's long-standing rate: 3480 lamports per byte-year, two
 * years, 128 bytes of account overhead. */
#define RENT_LAMPORTS(space) (((space) + 128ULL) * 6960ULL)

/* SBPF calls take at most 5 arguments: wider helpers are always inlined. */
#define INLINE static inline __attribute__((always_inline))

#define FAIL(code, text) do { LOG(text); return (code); } while (0)
#define TRY(expr) do { uint64_t _e = (expr); if (_e) return _e; } while (0)

/* ------------------------------------------------------------------ input buffer */

uint64_t parse_input(const uint8_t *buf, Input *in) {
  uint64_t n = load_u64(buf);
  uint64_t off = 8;
  in->n_accounts = n;
  for (uint64_t i = 0; i < n; i++) {
    uint8_t dup = buf[off];
    if (dup != 0xff) {
      if (i < MAX_ACCOUNTS && dup < MAX_ACCOUNTS) in->accounts[i] = in->accounts[dup];
      off += 8;
      continue;
    }
    uint64_t data_len = load_u64(buf + off + 80);
    if (i < MAX_ACCOUNTS) {
      Account *a = &in->accounts[i];
      a->is_signer = buf[off + 1];
      a->is_writable = buf[off + 2];
      a->executable = buf[off + 3];
      a->key = buf + off + 8;
      a->owner = buf + off + 40;
      a->lamports = (uint64_t *)(buf + off + 72);
      a->data_len = (uint64_t *)(buf + off + 80);
      a->data = (uint8_t *)(buf + off + 88);
    }
    off += 88 + data_len + MAX_PERMITTED_DATA_INCREASE;
    off = (off + 7) & ~7ULL;
    if (i < MAX_ACCOUNTS) in->accounts[i].rent_epoch = load_u64(buf + off);
    off += 8;
  }
  in->data_len = load_u64(buf + off);
  in->data = buf + off + 8;
  in->program_id = buf + off + 8 + in->data_len;
  return 0;
}

/* ------------------------------------------------------------------ account checks */

static uint64_t need_accounts(const Input *in, uint64_t n) {
  if (in->n_accounts < n) FAIL(ERR_NOT_ENOUGH_ACCOUNTS, "not enough accounts");
  return 0;
}

static uint64_t need_signer(const Account *a) {
  if (!a->is_signer) { LOG("missing signature of"); sol_log_pubkey(a->key); return ERR_MISSING_SIGNATURE; }
  return 0;
}

static uint64_t need_writable(const Account *a) {
  if (!a->is_writable) { LOG("account must be writable:"); sol_log_pubkey(a->key); return ERR_NOT_WRITABLE; }
  return 0;
}

static uint64_t need_program(const Account *a, const uint8_t *id) {
  if (!key_eq(a->key, id)) FAIL(ERR_WRONG_PROGRAM, "wrong program account");
  return 0;
}

/* An account of ours: owned by this program, big enough, the right discriminator. */
INLINE uint64_t load_ours(const Input *in, const Account *a, uint64_t disc, uint64_t size, int writable,
                          void **out) {
  if (!key_eq(a->owner, in->program_id)) {
    LOG("account not owned by the escrow program:");
    sol_log_pubkey(a->key);
    return ERR_WRONG_ACCOUNT_OWNER;
  }
  if (*a->data_len < size || load_u64(a->data) != disc) FAIL(ERR_WRONG_ACCOUNT_TYPE, "wrong account type");
  if (writable) TRY(need_writable(a));
  *out = a->data;
  return 0;
}

static uint64_t load_config(const Input *in, const Account *a, int writable, Config **out) {
  return load_ours(in, a, DISC_CONFIG, sizeof(Config), writable, (void **)out);
}

/* The agent PDA of `owner` (the stored owner is the PDA seed: a different one means the
 * caller passed another agent's account). */
static uint64_t load_agent(const Input *in, const Account *a, const uint8_t *owner, Agent **out) {
  TRY(load_ours(in, a, DISC_AGENT, sizeof(Agent), 1, (void **)out));
  if (owner && !key_eq((*out)->owner, owner)) FAIL(ERR_INVALID_PDA, "agent account is not the PDA of this owner");
  return 0;
}

static uint64_t load_position(const Input *in, const Account *a, Position **out) {
  TRY(load_ours(in, a, DISC_POSITION, sizeof(Position), 1, (void **)out));
  if ((*out)->status != STATUS_OPEN) FAIL(ERR_POSITION_NOT_OPEN, "position is not open");
  return 0;
}

static uint64_t need_authority(const Config *cfg, const Account *a) {
  TRY(need_signer(a));
  if (!key_eq(a->key, cfg->authority)) FAIL(ERR_WRONG_AUTHORITY, "signer is not the venue authority");
  return 0;
}

/* The two agents of a position, in order. */
INLINE uint64_t load_parties(const Input *in, const Position *p, const Account *long_acct,
                             const Account *short_acct, Agent **la, Agent **sa) {
  TRY(load_ours(in, long_acct, DISC_AGENT, sizeof(Agent), 1, (void **)la));
  TRY(load_ours(in, short_acct, DISC_AGENT, sizeof(Agent), 1, (void **)sa));
  if (!key_eq((*la)->owner, p->long_owner) || !key_eq((*sa)->owner, p->short_owner))
    FAIL(ERR_WRONG_AGENT, "agent accounts are not the parties of this position");
  return 0;
}

static int64_t now_s(void) {
  SolClock clock;
  sol_get_clock_sysvar(&clock);
  return clock.unix_timestamp;
}

/* ------------------------------------------------------------------ CPI helpers */

static void info_of(const Account *a, SolAccountInfo *info) {
  info->key = a->key;
  info->lamports = a->lamports;
  info->data_len = *a->data_len;
  info->data = a->data;
  info->owner = a->owner;
  info->rent_epoch = a->rent_epoch;
  info->is_signer = a->is_signer;
  info->is_writable = a->is_writable;
  info->executable = a->executable;
}

INLINE uint64_t system_call(const Account *payer, const Account *target, const Account *system, const uint8_t *data,
                            uint64_t data_len, int with_payer, const SolSignerSeeds *signer) {
  SolAccountMeta metas[2];
  SolAccountInfo infos[3];
  int n = 0;
  if (with_payer) {
    metas[n].pubkey = payer->key; metas[n].is_writable = 1; metas[n].is_signer = 1;
    info_of(payer, &infos[n]); n++;
  }
  metas[n].pubkey = target->key; metas[n].is_writable = 1; metas[n].is_signer = 1;
  info_of(target, &infos[n]); n++;
  info_of(system, &infos[n]);
  SolInstruction ix = {SYSTEM_PROGRAM_ID, metas, (uint64_t)n, data, data_len};
  return sol_invoke_signed_c(&ix, infos, n + 1, signer, 1);
}

/* Create the PDA `target` owned by this program, `space` bytes, rent paid by `payer`.
 * Works even if someone sent lamports to the address beforehand (transfer the rest,
 * allocate, assign), so a position id cannot be blocked by a pre-funded address. */
INLINE uint64_t create_pda(const Input *in, const Account *payer, const Account *target, const Account *system,
                           const SolSignerSeed *seeds, int n_seeds, uint64_t space) {
  SolSignerSeeds signer = {seeds, (uint64_t)n_seeds};
  uint64_t rent = RENT_LAMPORTS(space);
  uint8_t data[52];
  TRY(need_program(system, SYSTEM_PROGRAM_ID));
  TRY(need_writable(target));
  TRY(need_writable(payer));
  if (*target->lamports == 0) {
    store_u32(data, 0); /* CreateAccount */
    store_u64(data + 4, rent);
    store_u64(data + 12, space);
    key_copy(data + 20, in->program_id);
    return system_call(payer, target, system, data, 52, 1, &signer);
  }
  if (*target->lamports < rent) {
    store_u32(data, 2); /* Transfer: from payer to target */
    store_u64(data + 4, rent - *target->lamports);
    SolAccountMeta metas[2] = {{payer->key, 1, 1}, {target->key, 1, 0}};
    SolAccountInfo infos[3];
    info_of(payer, &infos[0]);
    info_of(target, &infos[1]);
    info_of(system, &infos[2]);
    SolInstruction ix = {SYSTEM_PROGRAM_ID, metas, 2, data, 12};
    TRY(sol_invoke_signed_c(&ix, infos, 3, NULL, 0));
  }
  store_u32(data, 8); /* Allocate */
  store_u64(data + 4, space);
  TRY(system_call(payer, target, system, data, 12, 0, &signer));
  store_u32(data, 1); /* Assign */
  key_copy(data + 4, in->program_id);
  return system_call(payer, target, system, data, 36, 0, &signer);
}

/* SPL Token Transfer of `amount` from `source` to `dest`, authorised by `authority`
 * (a transaction signer, or the config PDA when `config_bump` is given). */
INLINE uint64_t token_transfer(const Account *source, const Account *dest, const Account *authority,
                               const Account *token_program, uint64_t amount, const uint8_t *config_bump) {
  TRY(need_program(token_program, TOKEN_PROGRAM_ID));
  uint8_t data[9];
  data[0] = 3; /* Transfer */
  store_u64(data + 1, amount);
  SolAccountMeta metas[3] = {{source->key, 1, 0}, {dest->key, 1, 0}, {authority->key, 0, 1}};
  SolAccountInfo infos[4];
  info_of(source, &infos[0]);
  info_of(dest, &infos[1]);
  info_of(authority, &infos[2]);
  info_of(token_program, &infos[3]);
  SolInstruction ix = {TOKEN_PROGRAM_ID, metas, 3, data, 9};
  if (config_bump) {
    SolSignerSeed seeds[2] = {{SEED_CONFIG, sizeof(SEED_CONFIG) - 1}, {config_bump, 1}};
    SolSignerSeeds signer = {seeds, 2};
    return sol_invoke_signed_c(&ix, infos, 4, &signer, 1);
  }
  return sol_invoke_signed_c(&ix, infos, 4, NULL, 0);
}

/* ------------------------------------------------------------------ money helpers */

static uint64_t need_range(uint64_t value, uint64_t lo, uint64_t hi) {
  if (value < lo || value > hi) {
    LOG("argument out of range");
    sol_log_64_(value, lo, hi, 0, 0);
    return ERR_INVALID_ARGUMENT;
  }
  return 0;
}

static uint64_t abs_i64(int64_t v) { return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; }

/* Move `long_to_short` (signed) from one margin to the other; never more than the payer has. */
static uint64_t apply_funding(Position *p, Agent *la, Agent *sa, int64_t long_to_short) {
  uint64_t amount = abs_i64(long_to_short);
  if (long_to_short >= 0) {
    if (amount > p->margin_long_e6) FAIL(ERR_FUNDING_EXCEEDS_MARGIN, "funding exceeds the long margin");
    p->margin_long_e6 -= amount; p->margin_short_e6 += amount;
    la->locked_e6 -= amount; sa->locked_e6 += amount;
  } else {
    if (amount > p->margin_short_e6) FAIL(ERR_FUNDING_EXCEEDS_MARGIN, "funding exceeds the short margin");
    p->margin_short_e6 -= amount; p->margin_long_e6 += amount;
    sa->locked_e6 -= amount; la->locked_e6 += amount;
  }
  return 0;
}

/* Check that `pnl_long` is within 1 of size x (exit - entry) / entry, exactly:
 * |pnl x entry - size x (exit - entry)| <= entry. All products < 2^114 within the bounds.
 * Like the engine, a PnL beyond +-PNL_E6_MAX is clamped to it. */
static uint64_t check_pnl(uint64_t size, uint64_t entry, uint64_t exit, int64_t pnl_long) {
  u128 a = mul_64x64(abs_i64(pnl_long), entry);
  int a_neg = pnl_long < 0;
  int b_neg = exit < entry;
  u128 b = mul_64x64(size, b_neg ? entry - exit : exit - entry);
  u128 diff;
  if (abs_i64(pnl_long) == PNL_E6_MAX && a_neg == b_neg && cmp_u128(b, mul_64x64(PNL_E6_MAX, entry)) >= 0)
    return 0;
  if (a_neg == b_neg) diff = cmp_u128(a, b) >= 0 ? sub_u128(a, b) : sub_u128(b, a);
  else diff = add_u128(a, b);
  u128 tol = {entry, 0};
  if (cmp_u128(diff, tol) > 0) {
    LOG("pnl does not match size, entry and exit price");
    sol_log_64_(size, entry, exit, (uint64_t)pnl_long, 0);
    return ERR_PNL_MISMATCH;
  }
  return 0;
}

/* pnl_long = round_half_even(size x (price - entry) / entry), computed exactly, clamped
 * to +-PNL_E6_MAX as the engine does. */
static uint64_t pnl_at(uint64_t size, uint64_t entry, uint64_t price, int64_t *out) {
  int neg = price < entry;
  int ok = 1;
  u128 num = mul_64x64(size, neg ? entry - price : price - entry);
  uint64_t q = div_half_even_u128(num.hi, num.lo, entry, &ok);
  if (!ok || q > PNL_E6_MAX) q = PNL_E6_MAX;
  *out = neg ? -(int64_t)q : (int64_t)q;
  return 0;
}

/* DESIGN §4: equity < (margin_open / size_open) x maintenance x size x price / entry,
 * compared exactly as equity x size_open x 10_000 x entry < margin_open x bps x size x price. */
INLINE int below_maintenance(uint64_t margin, int64_t pnl_side, uint64_t margin_open, uint64_t size_open,
                             uint64_t size, uint64_t entry, uint64_t price, uint16_t maintenance_bps) {
  int64_t equity = (int64_t)margin + pnl_side;
  u256 rhs, lhs;
  mul4(&rhs, margin_open, maintenance_bps, size, price);
  int rhs_positive = (rhs.w[0] | rhs.w[1] | rhs.w[2] | rhs.w[3]) != 0;
  if (equity <= 0) return equity < 0 || rhs_positive;
  mul4(&lhs, (uint64_t)equity, size_open, BPS_SCALE, entry);
  return cmp_u256(&lhs, &rhs) < 0;
}

/* The loser pays the winner |pnl| capped by its whole margin; insurance covers the rest
 * as far as it goes; what remains is recorded as bad debt (engine/risk/settlement.py). */
static void close_out(Config *cfg, Position *p, Agent *la, Agent *sa, int64_t pnl_long) {
  uint64_t owed = abs_i64(pnl_long);
  int long_wins = pnl_long >= 0;
  uint64_t *loser_margin = long_wins ? &p->margin_short_e6 : &p->margin_long_e6;
  uint64_t *winner_margin = long_wins ? &p->margin_long_e6 : &p->margin_short_e6;
  Agent *loser = long_wins ? sa : la;
  Agent *winner = long_wins ? la : sa;
  uint64_t paid = owed < *loser_margin ? owed : *loser_margin;
  uint64_t short_e6 = owed - paid;
  uint64_t covered = short_e6 < cfg->insurance_e6 ? short_e6 : cfg->insurance_e6;
  *loser_margin -= paid;
  loser->locked_e6 -= paid;
  *winner_margin += paid + covered;
  winner->locked_e6 += paid + covered;
  cfg->insurance_e6 -= covered;
  cfg->bad_debt_e6 += short_e6 - covered;
}

/* Return margin amounts to the owners' free balances. */
static void release(Position *p, Agent *la, Agent *sa, uint64_t back_long, uint64_t back_short) {
  p->margin_long_e6 -= back_long;
  la->locked_e6 -= back_long;
  la->free_e6 += back_long;
  p->margin_short_e6 -= back_short;
  sa->locked_e6 -= back_short;
  sa->free_e6 += back_short;
}

static void finish(Position *p, Agent *la, Agent *sa, uint8_t status) {
  p->status = status;
  p->size_e6 = 0;
  la->open_positions -= 1;
  sa->open_positions -= 1;
}

static uint64_t check_conserved(uint64_t before, uint64_t after) {
  if (before != after) {
    LOG("conservation violated");
    sol_log_64_(before, after, 0, 0, 0);
    return ERR_CONSERVATION;
  }
  return 0;
}

/* ------------------------------------------------------------------ instructions */

/* initialize(authority: Pubkey, escape_delay_s: i64, oracle_max_age_s: u32,
 *            max_deviation_bps: u16, markets: Vec<MarketParams>)
 * accounts: admin (signer, writable), config (writable), usdc_mint, vault, system_program */
static uint64_t ix_initialize(const Input *in, const uint8_t *args, uint64_t n) {
  TRY(need_accounts(in, 5));
  const Account *admin = &in->accounts[0], *config = &in->accounts[1], *mint = &in->accounts[2],
                *vault = &in->accounts[3], *system = &in->accounts[4];
  TRY(need_signer(admin));
  if (n < 32 + 8 + 4 + 2 + 4) FAIL(ERR_INVALID_ARGUMENT, "initialize: arguments too short");
  uint32_t n_markets = load_u32(args + 46);
  if (n_markets == 0 || n_markets > MAX_MARKETS || n < 50 + 40ULL * n_markets)
    FAIL(ERR_INVALID_ARGUMENT, "initialize: 1 to 8 markets");
  int64_t escape_delay_s = (int64_t)load_u64(args + 32);
  uint32_t max_age_s = load_u32(args + 40);
  uint16_t max_deviation_bps = load_u16(args + 44);
  if (escape_delay_s <= 0 || max_age_s == 0 || max_deviation_bps > BPS_SCALE)
    FAIL(ERR_INVALID_ARGUMENT, "initialize: bad risk parameters");

  if (key_eq(config->owner, in->program_id)) FAIL(ERR_ALREADY_INITIALIZED, "config already exists");
  uint8_t expected[32] __attribute__((aligned(8))), bump;
  SolSignerSeed find[1] = {{SEED_CONFIG, sizeof(SEED_CONFIG) - 1}};
  sol_try_find_program_address(find, 1, in->program_id, expected, &bump);
  if (!key_eq(expected, config->key)) FAIL(ERR_INVALID_PDA, "config is not the config PDA");

  if (!key_eq(mint->owner, TOKEN_PROGRAM_ID) || *mint->data_len != 82 || mint->data[45] != 1)
    FAIL(ERR_WRONG_TOKEN_ACCOUNT, "usdc_mint is not an SPL Token mint");
  /* The vault: a USDC token account whose owner is the config PDA, with no delegate and
   * no close authority, so only this program can ever move its funds. */
  const uint8_t *v = vault->data;
  if (!key_eq(vault->owner, TOKEN_PROGRAM_ID) || *vault->data_len != 165 || !key_eq(v, mint->key) ||
      !key_eq(v + 32, config->key) || load_u32(v + 72) != 0 || v[108] != 1 || load_u32(v + 109) != 0 ||
      load_u32(v + 129) != 0)
    FAIL(ERR_WRONG_VAULT, "vault must be a USDC token account owned by the config PDA, no delegate or close authority");

  SolSignerSeed seeds[2] = {{SEED_CONFIG, sizeof(SEED_CONFIG) - 1}, {&bump, 1}};
  TRY(create_pda(in, admin, config, system, seeds, 2, sizeof(Config)));

  Config *cfg = (Config *)config->data;
  bytes_zero((uint8_t *)cfg, sizeof(Config));
  cfg->disc = DISC_CONFIG;
  key_copy(cfg->admin, admin->key);
  key_copy(cfg->authority, args);
  key_copy(cfg->usdc_mint, mint->key);
  key_copy(cfg->vault, vault->key);
  cfg->escape_delay_s = escape_delay_s;
  cfg->oracle_max_age_s = max_age_s;
  cfg->max_deviation_bps = max_deviation_bps;
  cfg->n_markets = (uint8_t)n_markets;
  cfg->bump = bump;
  for (uint32_t i = 0; i < n_markets; i++) {
    const uint8_t *m = args + 50 + 40 * i;
    Market *dst = &cfg->markets[i];
    key_copy(dst->feed_id, m);
    dst->maintenance_bps = load_u16(m + 32);
    dst->liquidation_reward_bps = load_u16(m + 34);
    dst->max_conf_bps = load_u16(m + 36);
    if (dst->maintenance_bps > BPS_SCALE || dst->liquidation_reward_bps > BPS_SCALE || dst->max_conf_bps > BPS_SCALE)
      FAIL(ERR_INVALID_ARGUMENT, "initialize: market bps above 10000");
  }
  return 0;
}

/* deposit(amount: u64)
 * accounts: owner (signer, writable), config (writable), agent (writable), owner_token
 * (writable), vault (writable), token_program, system_program */
static uint64_t ix_deposit(const Input *in, const uint8_t *args, uint64_t n) {
  TRY(need_accounts(in, 7));
  const Account *owner = &in->accounts[0], *config = &in->accounts[1], *agent = &in->accounts[2],
                *source = &in->accounts[3], *vault = &in->accounts[4], *token = &in->accounts[5],
                *system = &in->accounts[6];
  if (n < 8) FAIL(ERR_INVALID_ARGUMENT, "deposit: arguments too short");
  uint64_t amount = load_u64(args);
  TRY(need_range(amount, 1, AMOUNT_E6_MAX));
  TRY(need_signer(owner));
  Config *cfg;
  TRY(load_config(in, config, 1, &cfg));
  if (!key_eq(vault->key, cfg->vault)) FAIL(ERR_WRONG_VAULT, "not the escrow vault");

  Agent *a;
  if (key_eq(agent->owner, in->program_id)) {
    TRY(load_agent(in, agent, owner->key, &a));
  } else {
    uint8_t expected[32] __attribute__((aligned(8))), bump;
    SolSignerSeed find[2] = {{SEED_AGENT, sizeof(SEED_AGENT) - 1}, {owner->key, 32}};
    sol_try_find_program_address(find, 2, in->program_id, expected, &bump);
    if (!key_eq(expected, agent->key)) FAIL(ERR_INVALID_PDA, "agent is not the agent PDA of the signer");
    SolSignerSeed seeds[3] = {{SEED_AGENT, sizeof(SEED_AGENT) - 1}, {owner->key, 32}, {&bump, 1}};
    TRY(create_pda(in, owner, agent, system, seeds, 3, sizeof(Agent)));
    a = (Agent *)agent->data;
    bytes_zero((uint8_t *)a, sizeof(Agent));
    a->disc = DISC_AGENT;
    key_copy(a->owner, owner->key);
    a->bump = bump;
    a->last_venue_ts = now_s();
  }
  TRY(token_transfer(source, vault, owner, token, amount, NULL));
  a->free_e6 += amount;
  cfg->total_deposited_e6 += amount;
  return 0;
}

INLINE uint64_t pay_out(const Input *in, Config *cfg, const Account *config, Agent *a, const Account *vault,
                        const Account *dest, const Account *token, uint64_t amount) {
  TRY(need_range(amount, 1, AMOUNT_E6_MAX));
  if (!key_eq(vault->key, cfg->vault)) FAIL(ERR_WRONG_VAULT, "not the escrow vault");
  if (amount > a->free_e6) {
    LOG("withdrawal above the free balance");
    sol_log_64_(amount, a->free_e6, 0, 0, 0);
    return ERR_INSUFFICIENT_FREE;
  }
  TRY(token_transfer(vault, dest, config, token, amount, &cfg->bump));
  a->free_e6 -= amount;
  cfg->total_withdrawn_e6 += amount;
  return 0;
}

/* withdraw(seq: u64, amount: u64) — the agent AND the venue authority sign.
 * accounts: owner (signer), authority (signer), config (writable), agent (writable), vault
 * (writable), destination (writable), token_program */
static uint64_t ix_withdraw(const Input *in, const uint8_t *args, uint64_t n) {
  TRY(need_accounts(in, 7));
  const Account *owner = &in->accounts[0], *authority = &in->accounts[1], *config = &in->accounts[2],
                *agent = &in->accounts[3], *vault = &in->accounts[4], *dest = &in->accounts[5],
                *token = &in->accounts[6];
  if (n < 16) FAIL(ERR_INVALID_ARGUMENT, "withdraw: arguments too short");
  uint64_t seq = load_u64(args), amount = load_u64(args + 8);
  Config *cfg;
  TRY(load_config(in, config, 1, &cfg));
  TRY(need_authority(cfg, authority));
  TRY(need_signer(owner));
  Agent *a;
  TRY(load_agent(in, agent, owner->key, &a));
  if (seq <= a->last_withdraw_seq) FAIL(ERR_ALREADY_APPLIED, "withdrawal already applied");
  TRY(pay_out(in, cfg, config, a, vault, dest, token, amount));
  a->last_withdraw_seq = seq;
  a->last_venue_ts = now_s();
  return 0;
}

/* lock_position(position_id: u64, seq: u64, market: u16, taker_is_long: bool, size_e6: u64,
 *               entry_price_e8: u64, margin_long_e6: u64, margin_short_e6: u64, fee_e6: u64,
 *               funding_rate_e9: i64, opened_ns: i64)
 * accounts: authority (signer, writable), config (writable), position (writable), long_agent
 * (writable), short_agent (writable), system_program */
static uint64_t ix_lock_position(const Input *in, const uint8_t *args, uint64_t n) {
  TRY(need_accounts(in, 6));
  const Account *authority = &in->accounts[0], *config = &in->accounts[1], *position = &in->accounts[2],
                *long_acct = &in->accounts[3], *short_acct = &in->accounts[4], *system = &in->accounts[5];
  if (n < 75) FAIL(ERR_INVALID_ARGUMENT, "lock_position: arguments too short");
  uint64_t position_id = load_u64(args), seq = load_u64(args + 8);
  uint16_t market = load_u16(args + 16);
  uint8_t taker_is_long = args[18];
  uint64_t size = load_u64(args + 19), entry = load_u64(args + 27);
  uint64_t margin_long = load_u64(args + 35), margin_short = load_u64(args + 43), fee = load_u64(args + 51);
  int64_t rate = (int64_t)load_u64(args + 59), opened_ns = (int64_t)load_u64(args + 67);

  Config *cfg;
  TRY(load_config(in, config, 1, &cfg));
  TRY(need_authority(cfg, authority));
  if (market >= cfg->n_markets) FAIL(ERR_UNKNOWN_MARKET, "unknown market");
  TRY(need_range(taker_is_long, 0, 1));
  TRY(need_range(size, 1, SIZE_E6_MAX));
  TRY(need_range(entry, 1, PRICE_E8_MAX));
  TRY(need_range(margin_long, 1, AMOUNT_E6_MAX));
  TRY(need_range(margin_short, 1, AMOUNT_E6_MAX));
  TRY(need_range(fee, 0, AMOUNT_E6_MAX));
  TRY(need_range(abs_i64(rate), 0, RATE_E9_MAX));

  Agent *la, *sa;
  TRY(load_agent(in, long_acct, NULL, &la));
  TRY(load_agent(in, short_acct, NULL, &sa));
  if (key_eq(long_acct->key, short_acct->key)) FAIL(ERR_SAME_AGENT, "a position needs two different agents");

  if (key_eq(position->owner, in->program_id)) FAIL(ERR_POSITION_EXISTS, "position already locked");
  uint8_t id_le[8], expected[32] __attribute__((aligned(8))), bump;
  store_u64(id_le, position_id);
  SolSignerSeed find[2] = {{SEED_POSITION, sizeof(SEED_POSITION) - 1}, {id_le, 8}};
  sol_try_find_program_address(find, 2, in->program_id, expected, &bump);
  if (!key_eq(expected, position->key)) FAIL(ERR_INVALID_PDA, "position is not the PDA of this position id");

  Agent *taker = taker_is_long ? la : sa, *maker = taker_is_long ? sa : la;
  uint64_t taker_margin = taker_is_long ? margin_long : margin_short;
  uint64_t maker_margin = taker_is_long ? margin_short : margin_long;
  if (taker->free_e6 < taker_margin + fee || maker->free_e6 < maker_margin) {
    LOG("free balance below margin (+ fee)");
    sol_log_64_(taker->free_e6, taker_margin + fee, maker->free_e6, maker_margin, 0);
    return ERR_INSUFFICIENT_FREE;
  }

  SolSignerSeed seeds[3] = {{SEED_POSITION, sizeof(SEED_POSITION) - 1}, {id_le, 8}, {&bump, 1}};
  TRY(create_pda(in, authority, position, system, seeds, 3, sizeof(Position)));

  int64_t now = now_s();
  taker->free_e6 -= taker_margin + fee;
  taker->locked_e6 += taker_margin;
  maker->free_e6 -= maker_margin;
  maker->locked_e6 += maker_margin;
  cfg->fees_e6 += fee;
  la->open_positions += 1; sa->open_positions += 1;
  la->last_venue_ts = now; sa->last_venue_ts = now;

  Position *p = (Position *)position->data;
  bytes_zero((uint8_t *)p, sizeof(Position));
  p->disc = DISC_POSITION;
  p->position_id = position_id;
  key_copy(p->long_owner, la->owner);
  key_copy(p->short_owner, sa->owner);
  p->size_e6 = size; p->size_open_e6 = size;
  p->entry_price_e8 = entry;
  p->margin_long_e6 = margin_long; p->margin_short_e6 = margin_short;
  p->margin_open_long_e6 = margin_long; p->margin_open_short_e6 = margin_short;
  p->funding_rate_e9 = rate;
  p->opened_ns = opened_ns; p->last_funding_ns = opened_ns;
  p->last_settled_ts = now;
  p->last_seq = seq;
  p->market = market;
  p->taker_is_long = taker_is_long;
  p->status = STATUS_OPEN;
  p->bump = bump;
  return 0;
}

/* Common head of the venue's position instructions: authority, config, open position,
 * its two parties, and a journal seq newer than the last one applied. */
typedef struct {
  Config *cfg;
  Position *p;
  Agent *la, *sa;
} Ctx;

static uint64_t venue_position(const Input *in, uint64_t seq, Ctx *c) {
  const Account *authority = &in->accounts[0], *config = &in->accounts[1], *position = &in->accounts[2];
  TRY(load_config(in, config, 1, &c->cfg));
  TRY(need_authority(c->cfg, authority));
  TRY(load_position(in, position, &c->p));
  TRY(load_parties(in, c->p, &in->accounts[3], &in->accounts[4], &c->la, &c->sa));
  if (seq <= c->p->last_seq) FAIL(ERR_ALREADY_APPLIED, "event already applied to this position");
  return 0;
}

static uint64_t funding_to(Ctx *c, int64_t long_to_short, int64_t until_ns) {
  if (abs_i64(long_to_short) > AMOUNT_E6_MAX) FAIL(ERR_FUNDING_EXCEEDS_MARGIN, "funding out of range");
  if (until_ns < c->p->last_funding_ns) FAIL(ERR_INVALID_ARGUMENT, "funding time goes backwards");
  TRY(apply_funding(c->p, c->la, c->sa, long_to_short));
  c->p->last_funding_ns = until_ns;
  return 0;
}

static void touched(Ctx *c, uint64_t seq) {
  int64_t now = now_s();
  c->p->last_seq = seq;
  c->p->last_settled_ts = now;
  c->la->last_venue_ts = now;
  c->sa->last_venue_ts = now;
}

/* settle_funding(seq: u64, long_to_short_e6: i64, until_ns: i64)
 * accounts: authority (signer), config, position (writable), long_agent (writable),
 * short_agent (writable) */
static uint64_t ix_settle_funding(const Input *in, const uint8_t *args, uint64_t n) {
  TRY(need_accounts(in, 5));
  if (n < 24) FAIL(ERR_INVALID_ARGUMENT, "settle_funding: arguments too short");
  uint64_t seq = load_u64(args);
  Ctx c;
  TRY(venue_position(in, seq, &c));
  TRY(funding_to(&c, (int64_t)load_u64(args + 8), (int64_t)load_u64(args + 16)));
  touched(&c, seq);
  return 0;
}

/* adjust_margin(seq: u64, side: u8 (1 long, 2 short), delta_e6: i64)
 * accounts: authority (signer), config (writable), position (writable), long_agent
 * (writable), short_agent (writable)
 * delta > 0: the side owner's free -> the side's margin (and the owner's locked);
 * delta < 0: back, never more than the side's margin. The initial-margin rule on removal
 * (equity at the oracle price stays >= the initial requirement) is the venue's check:
 * the program does not read the oracle here (see README, "trusted"). */
static uint64_t ix_adjust_margin(const Input *in, const uint8_t *args, uint64_t n) {
  TRY(need_accounts(in, 5));
  if (n < 17) FAIL(ERR_INVALID_ARGUMENT, "adjust_margin: arguments too short");
  uint64_t seq = load_u64(args);
  uint8_t side = args[8];
  int64_t delta = (int64_t)load_u64(args + 9);
  Ctx c;
  TRY(venue_position(in, seq, &c));
  TRY(need_range(side, 1, 2));
  uint64_t amount = abs_i64(delta);
  TRY(need_range(amount, 1, AMOUNT_E6_MAX));
  Agent *owner = side == 1 ? c.la : c.sa;
  uint64_t *margin = side == 1 ? &c.p->margin_long_e6 : &c.p->margin_short_e6;
  uint64_t before = owner->free_e6 + owner->locked_e6;
  if (delta > 0) {
    if (owner->free_e6 < amount) {
      LOG("free balance below the margin to add");
      sol_log_64_(owner->free_e6, amount, 0, 0, 0);
      return ERR_INSUFFICIENT_FREE;
    }
    owner->free_e6 -= amount;
    owner->locked_e6 += amount;
    *margin += amount;
  } else {
    if (*margin < amount || owner->locked_e6 < amount) {
      LOG("margin to remove exceeds the side's margin");
      sol_log_64_(*margin, amount, 0, 0, 0);
      return ERR_INSUFFICIENT_MARGIN;
    }
    *margin -= amount;
    owner->locked_e6 -= amount;
    owner->free_e6 += amount;
  }
  touched(&c, seq);
  return check_conserved(before, owner->free_e6 + owner->locked_e6);
}

/* close_position(seq: u64, fraction_bps: u16, exit_price_e8: u64,
 *                funding_long_to_short_e6: i64, pnl_long_e6: i64, until_ns: i64)
 * accounts: authority (signer), config (writable), position (writable), long_agent
 * (writable), short_agent (writable) */
static uint64_t ix_close_position(const Input *in, const uint8_t *args, uint64_t n) {
  TRY(need_accounts(in, 5));
  if (n < 42) FAIL(ERR_INVALID_ARGUMENT, "close_position: arguments too short");
  uint64_t seq = load_u64(args);
  uint16_t fraction_bps = load_u16(args + 8);
  uint64_t exit = load_u64(args + 10);
  int64_t funding = (int64_t)load_u64(args + 18), pnl = (int64_t)load_u64(args + 26);
  int64_t until_ns = (int64_t)load_u64(args + 34);
  Ctx c;
  TRY(venue_position(in, seq, &c));
  TRY(need_range(fraction_bps, 1, BPS_SCALE));
  TRY(need_range(exit, 1, PRICE_E8_MAX));
  Position *p = c.p;
  uint64_t before = p->margin_long_e6 + p->margin_short_e6 + c.cfg->insurance_e6;

  TRY(funding_to(&c, funding, until_ns));
  int full = fraction_bps == BPS_SCALE;
  uint64_t closed = full ? p->size_e6 : div_half_even_u64(p->size_e6 * fraction_bps, BPS_SCALE);
  if (!full && (closed == 0 || closed >= p->size_e6)) FAIL(ERR_INVALID_ARGUMENT, "close_position: fraction closes nothing or everything");
  TRY(check_pnl(closed, p->entry_price_e8, exit, pnl));
  close_out(c.cfg, p, c.la, c.sa, pnl);

  uint64_t back_long = p->margin_long_e6, back_short = p->margin_short_e6;
  if (!full) {
    int ok = 1;
    u128 bl = mul_64x64(back_long, fraction_bps), bs = mul_64x64(back_short, fraction_bps);
    back_long = div_half_even_u128(bl.hi, bl.lo, BPS_SCALE, &ok);
    back_short = div_half_even_u128(bs.hi, bs.lo, BPS_SCALE, &ok);
  }
  release(p, c.la, c.sa, back_long, back_short);
  if (full) finish(p, c.la, c.sa, STATUS_CLOSED);
  else p->size_e6 -= closed;
  touched(&c, seq);
  return check_conserved(before, p->margin_long_e6 + p->margin_short_e6 + c.cfg->insurance_e6 + back_long + back_short);
}

/* liquidate(seq: u64, side: u8 (1 long, 2 short), exit_price_e8: u64,
 *           funding_long_to_short_e6: i64, pnl_long_e6: i64, until_ns: i64)
 * accounts: authority (signer), config (writable), position (writable), long_agent
 * (writable), short_agent (writable), keeper (writable: the keeper's agent account, or
 * the config account to pay the insurance fund), price_update (Pyth PriceUpdateV2) */
static uint64_t ix_liquidate(const Input *in, const uint8_t *args, uint64_t n) {
  TRY(need_accounts(in, 7));
  if (n < 41) FAIL(ERR_INVALID_ARGUMENT, "liquidate: arguments too short");
  uint64_t seq = load_u64(args);
  uint8_t side = args[8];
  uint64_t exit = load_u64(args + 9);
  int64_t funding = (int64_t)load_u64(args + 17), pnl = (int64_t)load_u64(args + 25);
  int64_t until_ns = (int64_t)load_u64(args + 33);
  Ctx c;
  TRY(venue_position(in, seq, &c));
  TRY(need_range(side, 1, 2));
  TRY(need_range(exit, 1, PRICE_E8_MAX));
  Position *p = c.p;
  const Market *market = &c.cfg->markets[p->market];

  /* The program's own view: the posted oracle price, fresh and for this market. */
  OraclePrice oracle;
  TRY(read_pyth_price(&in->accounts[6], market, c.cfg->oracle_max_age_s, now_s(), &oracle));
  uint64_t P = oracle.price_e8;
  uint64_t gap = exit > P ? exit - P : P - exit;
  if (gap * BPS_SCALE > (uint64_t)c.cfg->max_deviation_bps * P) {
    LOG("liquidation price too far from the oracle price");
    sol_log_64_(exit, P, 0, 0, 0);
    return ERR_PRICE_DEVIATION;
  }
  int64_t pnl_oracle;
  TRY(pnl_at(p->size_e6, p->entry_price_e8, P, &pnl_oracle));
  int below = side == 1
      ? below_maintenance(p->margin_long_e6, pnl_oracle, p->margin_open_long_e6, p->size_open_e6, p->size_e6,
                          p->entry_price_e8, P, market->maintenance_bps)
      : below_maintenance(p->margin_short_e6, -pnl_oracle, p->margin_open_short_e6, p->size_open_e6, p->size_e6,
                          p->entry_price_e8, P, market->maintenance_bps);
  if (!below) {
    LOG("side is not below maintenance at the oracle price");
    sol_log_64_(side, P, p->margin_long_e6, p->margin_short_e6, (uint64_t)pnl_oracle);
    return ERR_NOT_LIQUIDATABLE;
  }

  /* The keeper: its agent account, or the config account for the insurance fund. */
  const Account *keeper_acct = &in->accounts[5];
  Agent *keeper = NULL;
  if (!key_eq(keeper_acct->key, in->accounts[1].key)) TRY(load_agent(in, keeper_acct, NULL, &keeper));

  uint64_t before = p->margin_long_e6 + p->margin_short_e6 + c.cfg->insurance_e6;
  TRY(funding_to(&c, funding, until_ns));
  TRY(check_pnl(p->size_e6, p->entry_price_e8, exit, pnl));
  close_out(c.cfg, p, c.la, c.sa, pnl);

  uint64_t *left = side == 1 ? &p->margin_long_e6 : &p->margin_short_e6;
  Agent *liquidated = side == 1 ? c.la : c.sa;
  int ok = 1;
  u128 rw = mul_64x64(*left, market->liquidation_reward_bps);
  uint64_t reward = div_half_even_u128(rw.hi, rw.lo, BPS_SCALE, &ok);
  *left -= reward;
  liquidated->locked_e6 -= reward;
  if (keeper) keeper->free_e6 += reward;
  else c.cfg->insurance_e6 += reward;
  uint64_t back_long = p->margin_long_e6, back_short = p->margin_short_e6;
  release(p, c.la, c.sa, back_long, back_short);
  finish(p, c.la, c.sa, STATUS_LIQUIDATED);
  touched(&c, seq);
  /* The reward to the insurance fund is already inside insurance_e6. */
  return check_conserved(before, c.cfg->insurance_e6 + back_long + back_short + (keeper ? reward : 0));
}

/* emergency_close() — either party alone, once the venue has left the position untouched
 * for escape_delay_s: funding accrued since the last settlement, then the PnL at the
 * oracle price, then both margins back to their owners.
 * accounts: party (signer), config (writable), position (writable), long_agent (writable),
 * short_agent (writable), price_update (Pyth PriceUpdateV2) */
static uint64_t ix_emergency_close(const Input *in) {
  TRY(need_accounts(in, 6));
  const Account *party = &in->accounts[0];
  Ctx c;
  TRY(load_config(in, &in->accounts[1], 1, &c.cfg));
  TRY(load_position(in, &in->accounts[2], &c.p));
  TRY(load_parties(in, c.p, &in->accounts[3], &in->accounts[4], &c.la, &c.sa));
  TRY(need_signer(party));
  Position *p = c.p;
  if (!key_eq(party->key, p->long_owner) && !key_eq(party->key, p->short_owner))
    FAIL(ERR_NOT_PARTY, "signer is not a party to the position");
  int64_t now = now_s();
  if (now < p->last_settled_ts + c.cfg->escape_delay_s) {
    LOG("escape hatch not open yet");
    sol_log_64_((uint64_t)now, (uint64_t)(p->last_settled_ts + c.cfg->escape_delay_s), 0, 0, 0);
    return ERR_ESCAPE_TOO_EARLY;
  }
  const Market *market = &c.cfg->markets[p->market];
  OraclePrice oracle;
  TRY(read_pyth_price(&in->accounts[5], market, c.cfg->oracle_max_age_s, now, &oracle));
  uint64_t before = p->margin_long_e6 + p->margin_short_e6 + c.cfg->insurance_e6;

  /* Funding since the last settlement, to the second: size x |rate| x dt / (1e9 x 8h),
   * from the taker to the maker (the maker pays when the rate is negative), capped. */
  int64_t last_s = p->last_funding_ns > 0 ? (int64_t)((uint64_t)p->last_funding_ns / 1000000000ULL) : 0;
  if (now > last_s && p->funding_rate_e9 != 0) {
    uint64_t elapsed = (uint64_t)(now - last_s);
    if (elapsed > 10ULL * 366 * 86400) elapsed = 10ULL * 366 * 86400;
    u256 num;
    mul4(&num, p->size_e6, abs_i64(p->funding_rate_e9), elapsed, 1);
    uint64_t due = ~0ULL;
    if (num.w[2] == 0 && num.w[3] == 0) {
      int ok = 1;
      due = div_half_even_u128(num.w[1], num.w[0], RATE_SCALE_E9 * FUNDING_INTERVAL_S, &ok);
      if (!ok) due = ~0ULL;
    }
    int long_pays = (p->funding_rate_e9 > 0) == (p->taker_is_long != 0);
    uint64_t cap = long_pays ? p->margin_long_e6 : p->margin_short_e6;
    if (due > cap) due = cap;
    TRY(apply_funding(p, c.la, c.sa, long_pays ? (int64_t)due : -(int64_t)due));
  }
  p->last_funding_ns = now * 1000000000LL;

  int64_t pnl;
  TRY(pnl_at(p->size_e6, p->entry_price_e8, oracle.price_e8, &pnl));
  close_out(c.cfg, p, c.la, c.sa, pnl);
  uint64_t back_long = p->margin_long_e6, back_short = p->margin_short_e6;
  release(p, c.la, c.sa, back_long, back_short);
  finish(p, c.la, c.sa, STATUS_EMERGENCY_CLOSED);
  return check_conserved(before, c.cfg->insurance_e6 + back_long + back_short);
}

/* emergency_withdraw(amount: u64) — the agent alone, once the venue has not acted on
 * this agent for escape_delay_s.
 * accounts: owner (signer), config (writable), agent (writable), vault (writable),
 * destination (writable), token_program */
static uint64_t ix_emergency_withdraw(const Input *in, const uint8_t *args, uint64_t n) {
  TRY(need_accounts(in, 6));
  const Account *owner = &in->accounts[0], *config = &in->accounts[1], *agent = &in->accounts[2];
  if (n < 8) FAIL(ERR_INVALID_ARGUMENT, "emergency_withdraw: arguments too short");
  Config *cfg;
  TRY(load_config(in, config, 1, &cfg));
  TRY(need_signer(owner));
  Agent *a;
  TRY(load_agent(in, agent, owner->key, &a));
  if (now_s() < a->last_venue_ts + cfg->escape_delay_s) FAIL(ERR_ESCAPE_TOO_EARLY, "escape hatch not open yet");
  return pay_out(in, cfg, config, a, &in->accounts[3], &in->accounts[4], &in->accounts[5], load_u64(args));
}

uint64_t entrypoint(const uint8_t *buf) {
  Input in;
  parse_input(buf, &in);
  if (in.data_len < 8) FAIL(ERR_UNKNOWN_INSTRUCTION, "instruction data shorter than a discriminator");
  uint64_t tag = load_u64(in.data);
  const uint8_t *args = in.data + 8;
  uint64_t n = in.data_len - 8;
  switch (tag) {
    case IX_INITIALIZE: return ix_initialize(&in, args, n);
    case IX_DEPOSIT: return ix_deposit(&in, args, n);
    case IX_WITHDRAW: return ix_withdraw(&in, args, n);
    case IX_LOCK_POSITION: return ix_lock_position(&in, args, n);
    case IX_SETTLE_FUNDING: return ix_settle_funding(&in, args, n);
    case IX_CLOSE_POSITION: return ix_close_position(&in, args, n);
    case IX_LIQUIDATE: return ix_liquidate(&in, args, n);
    case IX_EMERGENCY_CLOSE: return ix_emergency_close(&in);
    case IX_EMERGENCY_WITHDRAW: return ix_emergency_withdraw(&in, args, n);
    case IX_ADJUST_MARGIN: return ix_adjust_margin(&in, args, n);
    default: FAIL(ERR_UNKNOWN_INSTRUCTION, "unknown instruction");
  }
}
