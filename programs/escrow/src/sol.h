/* The little of Solana's runtime ABI this program needs (SBPF v0, aligned loader).
 *
 * Types follow the layouts the runtime expects for the C syscalls (the historical
 * solana_sdk.h documents the same structures); written here from the ABI, not copied. */
#ifndef ESCROW_SOL_H
#define ESCROW_SOL_H

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
typedef uint64_t size_t;

#define NULL ((void *)0)
#define STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)

/* ---- syscalls (bound by name at load time through dynamic relocations) ---- */
typedef struct { const uint8_t *addr; uint64_t len; } SolSignerSeed;
typedef struct { const SolSignerSeed *addr; uint64_t len; } SolSignerSeeds;
typedef struct { const uint8_t *pubkey; uint8_t is_writable; uint8_t is_signer; } SolAccountMeta;
typedef struct {
  const uint8_t *program_id;
  const SolAccountMeta *accounts;
  uint64_t account_len;
  const uint8_t *data;
  uint64_t data_len;
} SolInstruction;
typedef struct {
  const uint8_t *key;
  uint64_t *lamports;
  uint64_t data_len;
  uint8_t *data;
  const uint8_t *owner;
  uint64_t rent_epoch;
  uint8_t is_signer;
  uint8_t is_writable;
  uint8_t executable;
} SolAccountInfo;
typedef struct {
  uint64_t slot;
  int64_t epoch_start_timestamp;
  uint64_t epoch;
  uint64_t leader_schedule_epoch;
  int64_t unix_timestamp;
} SolClock;

extern void sol_log_(const char *message, uint64_t len);
extern void sol_log_64_(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e);
extern void sol_log_pubkey(const uint8_t *key);
extern uint64_t sol_create_program_address(const SolSignerSeed *seeds, int seeds_len,
                                           const uint8_t *program_id, uint8_t *address);
extern uint64_t sol_try_find_program_address(const SolSignerSeed *seeds, int seeds_len,
                                             const uint8_t *program_id, uint8_t *address,
                                             uint8_t *bump);
extern uint64_t sol_invoke_signed_c(const SolInstruction *instruction,
                                    const SolAccountInfo *account_infos, int account_infos_len,
                                    const SolSignerSeeds *signers_seeds, int signers_seeds_len);
extern uint64_t sol_get_clock_sysvar(void *clock);

#define LOG(s) sol_log_((s), sizeof(s) - 1)

/* ---- the entrypoint input buffer ---- */
#define MAX_ACCOUNTS 12
#define MAX_PERMITTED_DATA_INCREASE (10 * 1024)

typedef struct {
  const uint8_t *key;
  const uint8_t *owner;
  uint64_t *lamports;
  uint64_t *data_len;  /* points into the buffer: CPI (create/allocate) updates it */
  uint8_t *data;
  uint64_t rent_epoch;
  uint8_t is_signer;
  uint8_t is_writable;
  uint8_t executable;
} Account;

typedef struct {
  Account accounts[MAX_ACCOUNTS];
  uint64_t n_accounts;
  const uint8_t *data;
  uint64_t data_len;
  const uint8_t *program_id;
} Input;

/* ---- small helpers (no libc, no compiler builtins) ---- */
static inline uint64_t load_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static inline uint32_t load_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline void store_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) { p[i] = (uint8_t)v; v >>= 8; }
}
static inline void store_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) { p[i] = (uint8_t)v; v >>= 8; }
}

/* Compare two pubkeys a word at a time (SBPF allows unaligned loads; the keys in the
 * input buffer, our account data and our constants are 8-byte aligned anyway). */
static inline int key_eq(const uint8_t *a, const uint8_t *b) {
  const uint64_t *x = (const uint64_t *)a, *y = (const uint64_t *)b;
  return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3])) == 0;
}
static inline void key_copy(uint8_t *dst, const uint8_t *src) {
  for (int i = 0; i < 32; i++) dst[i] = src[i];
}
static inline void bytes_zero(uint8_t *dst, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) dst[i] = 0;
}

uint64_t parse_input(const uint8_t *buf, Input *in);

#endif
