/* Account layouts, discriminators and error codes of the escrow program.
 *
 * Every account is Anchor-shaped: an 8-byte discriminator (sha256("account:<Name>")[:8])
 * then the fields in Borsh order. Fields are ordered so that each sits at its natural
 * alignment with no implicit padding, so the C structs below are byte-for-byte the Borsh
 * encoding (the static asserts pin every size; idl.json spells the same layouts). */
#ifndef ESCROW_LAYOUT_H
#define ESCROW_LAYOUT_H

#include "sol.h"

/* Instruction discriminators: sha256("global:<snake_name>")[:8], read little-endian. */
#define IX_INITIALIZE 0xed9b980d1f6dafafULL
#define IX_DEPOSIT 0xb6f2e15289c623f2ULL
#define IX_WITHDRAW 0x22a16d949c4612b7ULL
#define IX_LOCK_POSITION 0xb9ab0af7fc023ee3ULL
#define IX_SETTLE_FUNDING 0x5785e4c7a10cfb0bULL
#define IX_CLOSE_POSITION 0x626244310051867bULL
#define IX_LIQUIDATE 0x4a272e307de2b3dfULL
#define IX_EMERGENCY_CLOSE 0xaf25c26c8a420548ULL
#define IX_EMERGENCY_WITHDRAW 0x5cda499640cb2defULL
#define IX_ADJUST_MARGIN 0xfd345aae5073370eULL

/* Account discriminators: sha256("account:<Name>")[:8], read little-endian. */
#define DISC_CONFIG 0x82ccfa1ee0aa0c9bULL
#define DISC_AGENT 0x0756c59b9370a62fULL
#define DISC_POSITION 0xd0f7407ae48fbcaaULL
#define DISC_PRICE_UPDATE_V2 0xcdf47e9d6323f122ULL

#define MAX_MARKETS 8
#define BPS_SCALE 10000ULL
/* Bounds (engine/units.py): nothing below can overflow within them. */
#define SIZE_E6_MAX 10000000000000ULL    /* 10M USDC notional */
#define PRICE_E8_MAX 1000000000000000ULL /* 10M USD */
#define AMOUNT_E6_MAX 1000000000000000ULL /* 1B USDC */
#define RATE_E9_MAX 100000000LL          /* 10% per 8h */
#define PNL_E6_MAX 1000000000000000000ULL /* the engine clamps |pnl| here (1T USDC) */
#define FUNDING_INTERVAL_S 28800ULL
#define RATE_SCALE_E9 1000000000ULL

typedef struct {
  uint8_t feed_id[32];          /* Pyth price feed id */
  uint16_t maintenance_bps;     /* maintenance as a fraction of initial margin (5000 = 50%) */
  uint16_t liquidation_reward_bps; /* keeper reward, of the liquidated side's equity (500) */
  uint16_t max_conf_bps;        /* oracle confidence limit, of price (200) */
  uint16_t reserved;
} Market;
STATIC_ASSERT(sizeof(Market) == 40, "Market layout");

typedef struct {
  uint64_t disc;
  uint8_t admin[32];
  uint8_t authority[32];        /* the venue's settlement authority */
  uint8_t usdc_mint[32];
  uint8_t vault[32];            /* USDC token account owned by this config PDA */
  uint64_t fees_e6;             /* fees held inside the vault */
  uint64_t insurance_e6;        /* insurance fund held inside the vault */
  uint64_t bad_debt_e6;         /* losses nobody could cover, recorded */
  uint64_t total_deposited_e6;
  uint64_t total_withdrawn_e6;
  int64_t escape_delay_s;       /* venue silence after which parties may act alone */
  uint32_t oracle_max_age_s;
  uint16_t max_deviation_bps;   /* liquidation price vs oracle price */
  uint8_t n_markets;
  uint8_t bump;
  Market markets[MAX_MARKETS];
} Config;
STATIC_ASSERT(sizeof(Config) == 512, "Config layout");

typedef struct {
  uint64_t disc;
  uint8_t owner[32];            /* the agent's wallet */
  uint64_t free_e6;
  uint64_t locked_e6;           /* sum of this agent's margins in open positions */
  int64_t last_venue_ts;        /* chain time of the venue's last action on this agent */
  uint64_t last_withdraw_seq;   /* journal seq of the last venue withdrawal (idempotence) */
  uint32_t open_positions;
  uint8_t bump;
  uint8_t reserved[3];
} Agent;
STATIC_ASSERT(sizeof(Agent) == 80, "Agent layout");

#define STATUS_OPEN 1
#define STATUS_CLOSED 2
#define STATUS_LIQUIDATED 3
#define STATUS_EMERGENCY_CLOSED 4

typedef struct {
  uint64_t disc;
  uint64_t position_id;
  uint8_t long_owner[32];
  uint8_t short_owner[32];
  uint64_t size_e6;
  uint64_t size_open_e6;
  uint64_t entry_price_e8;
  uint64_t margin_long_e6;
  uint64_t margin_short_e6;
  uint64_t margin_open_long_e6;
  uint64_t margin_open_short_e6;
  int64_t funding_rate_e9;      /* taker pays maker size x rate per 8h */
  int64_t opened_ns;            /* engine time */
  int64_t last_funding_ns;      /* engine time funding is settled up to */
  int64_t last_settled_ts;      /* chain time of the venue's last action on it */
  uint64_t last_seq;            /* journal seq of the last event applied (idempotence) */
  uint16_t market;
  uint8_t taker_is_long;
  uint8_t status;
  uint8_t bump;
  uint8_t reserved[3];
} Position;
STATIC_ASSERT(sizeof(Position) == 184, "Position layout");

/* Custom errors (Anchor numbering: 6000 + index). Keep idl.json and README in step. */
enum {
  ERR_UNKNOWN_INSTRUCTION = 6000,
  ERR_INVALID_ARGUMENT,
  ERR_NOT_ENOUGH_ACCOUNTS,
  ERR_MISSING_SIGNATURE,
  ERR_WRONG_AUTHORITY,
  ERR_INVALID_PDA,
  ERR_WRONG_ACCOUNT_OWNER,
  ERR_WRONG_ACCOUNT_TYPE,
  ERR_ALREADY_INITIALIZED,
  ERR_NOT_WRITABLE,
  ERR_WRONG_VAULT,             /* 6010 */
  ERR_WRONG_TOKEN_ACCOUNT,
  ERR_WRONG_PROGRAM,
  ERR_INSUFFICIENT_FREE,
  ERR_POSITION_EXISTS,
  ERR_POSITION_NOT_OPEN,
  ERR_WRONG_AGENT,
  ERR_FUNDING_EXCEEDS_MARGIN,
  ERR_PNL_MISMATCH,
  ERR_NOT_LIQUIDATABLE,
  ERR_ORACLE_WRONG_OWNER,      /* 6020 */
  ERR_ORACLE_WRONG_FEED,
  ERR_ORACLE_STALE,
  ERR_ORACLE_INVALID,
  ERR_ORACLE_UNCERTAIN,
  ERR_PRICE_DEVIATION,
  ERR_ESCAPE_TOO_EARLY,
  ERR_NOT_PARTY,
  ERR_OVERFLOW,
  ERR_CONSERVATION,
  ERR_UNKNOWN_MARKET,          /* 6030 */
  ERR_SAME_AGENT,
  ERR_ALREADY_APPLIED,
  ERR_INSUFFICIENT_MARGIN,
};

#endif
