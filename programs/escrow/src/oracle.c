/* Reading a Pyth PriceUpdateV2 account (pyth-crosschain, pyth_solana_receiver_sdk).
 *
 * Borsh layout, after the Anchor discriminator sha256("account:PriceUpdateV2")[:8]:
 *   write_authority     Pubkey             32
 *   verification_level  enum               1 (Full = variant 1) or 2 (Partial = 0, num_signatures u8)
 *   price_message       PriceFeedMessage   84:
 *       feed_id [u8;32], price i64, conf u64, exponent i32, publish_time i64,
 *       prev_publish_time i64, ema_price i64, ema_conf u64
 *   posted_slot         u64                8
 * The receiver allocates 134 bytes (the Partial size); a Full update uses 133 of them, so
 * the message offset depends on the variant and must not be hard-coded. */
#include "oracle.h"

/* rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ, the Pyth Solana receiver program */
static const uint8_t PYTH_RECEIVER_ID[32] __attribute__((aligned(8))) = {
    0x0c, 0xb7, 0xfa, 0xbb, 0x52, 0xf7, 0xa6, 0x48, 0xbb, 0x5b, 0x31, 0x7d, 0x9a, 0x01, 0x8b, 0x90,
    0x57, 0xcb, 0x02, 0x47, 0x74, 0xfa, 0xfe, 0x01, 0xe6, 0xc4, 0xdf, 0x98, 0xcc, 0x38, 0x58, 0x81};

#define VERIFICATION_PARTIAL 0
#define VERIFICATION_FULL 1
#define MESSAGE_LEN 84

static uint64_t pow10(int n) {
  uint64_t v = 1;
  while (n-- > 0) v *= 10;
  return v;
}

/* Scale a non-negative Pyth amount with exponent `exponent` to 1e-8 units. */
static int to_e8(uint64_t value, int32_t exponent, int round_up, uint64_t *out) {
  if (exponent == -8) { *out = value; return 1; }
  if (exponent < -8) {
    if (exponent < -18) return 0;
    uint64_t d = pow10(-8 - exponent);
    uint64_t q = value / d;
    if (round_up && q * d != value) q++;
    *out = q;
    return 1;
  }
  if (exponent > 0) return 0;
  uint64_t m = pow10(exponent + 8);
  if (value > PRICE_E8_MAX / m) return 0;
  *out = value * m;
  return 1;
}

uint64_t read_pyth_price(const Account *acct, const Market *market, uint32_t max_age_s, int64_t now_s,
                         OraclePrice *out) {
  if (!key_eq(acct->owner, PYTH_RECEIVER_ID)) {
    LOG("oracle: account is not owned by the Pyth receiver program");
    return ERR_ORACLE_WRONG_OWNER;
  }
  const uint8_t *d = acct->data;
  uint64_t len = *acct->data_len;
  if (len < 8 + 32 + 1 + MESSAGE_LEN + 8 || load_u64(d) != DISC_PRICE_UPDATE_V2) {
    LOG("oracle: not a PriceUpdateV2 account");
    return ERR_ORACLE_INVALID;
  }
  uint8_t level = d[40];
  uint64_t m;
  if (level == VERIFICATION_FULL) {
    m = 41;
  } else {
    LOG("oracle: price update is not fully verified");
    return ERR_ORACLE_INVALID;
  }
  if (len < m + MESSAGE_LEN + 8) return ERR_ORACLE_INVALID;
  const uint8_t *msg = d + m;
  for (int i = 0; i < 32; i++)
    if (msg[i] != market->feed_id[i]) {
      LOG("oracle: feed id does not match the market");
      return ERR_ORACLE_WRONG_FEED;
    }
  int64_t price = (int64_t)load_u64(msg + 32);
  uint64_t conf = load_u64(msg + 40);
  int32_t exponent = (int32_t)load_u32(msg + 48);
  int64_t publish_time = (int64_t)load_u64(msg + 52);
  if (publish_time + (int64_t)max_age_s < now_s) {
    LOG("oracle: price is stale");
    sol_log_64_((uint64_t)publish_time, (uint64_t)now_s, max_age_s, 0, 0);
    return ERR_ORACLE_STALE;
  }
  uint64_t price_e8, conf_e8;
  if (price <= 0 || !to_e8((uint64_t)price, exponent, 0, &price_e8) || price_e8 == 0 ||
      price_e8 > PRICE_E8_MAX || !to_e8(conf, exponent, 1, &conf_e8)) {
    LOG("oracle: price out of range");
    return ERR_ORACLE_INVALID;
  }
  /* conf / price <= max_conf_bps / 10_000; both sides < 2^64 within the bounds */
  if (conf_e8 > price_e8 || conf_e8 * BPS_SCALE > (uint64_t)market->max_conf_bps * price_e8) {
    LOG("oracle: confidence interval too wide");
    return ERR_ORACLE_UNCERTAIN;
  }
  out->price_e8 = price_e8;
  out->conf_e8 = conf_e8;
  out->publish_time = publish_time;
  return 0;
}
