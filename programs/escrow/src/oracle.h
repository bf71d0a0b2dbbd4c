#ifndef ESCROW_ORACLE_H
#define ESCROW_ORACLE_H

#include "layout.h"

typedef struct {
  uint64_t price_e8;
  uint64_t conf_e8;
  int64_t publish_time;
} OraclePrice;

/* Check owner (Pyth receiver), discriminator, full verification, feed id, staleness
 * (publish_time + max_age >= now) and confidence; return 0 and the price in 1e-8 USD, or
 * an ERR_ORACLE_* code. */
uint64_t read_pyth_price(const Account *acct, const Market *market, uint32_t max_age_s, int64_t now_s,
                         OraclePrice *out);

#endif
