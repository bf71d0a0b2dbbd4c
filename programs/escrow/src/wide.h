/* Wide unsigned integers by hand: SBPF v0 has no 128-bit multiply and there is no
 * compiler-rt, so products of up to four 64-bit factors are kept in 64-bit limbs.
 * (BPF calls cannot return aggregates: the u128 helpers are inline, the rest write
 * through pointers.) */
#ifndef ESCROW_WIDE_H
#define ESCROW_WIDE_H

#include "sol.h"

typedef struct { uint64_t lo, hi; } u128;
typedef struct { uint64_t w[4]; } u256; /* little-endian limbs */

static inline __attribute__((always_inline)) u128 mul_64x64(uint64_t a, uint64_t b) {
  uint64_t a_lo = a & 0xffffffffULL, a_hi = a >> 32;
  uint64_t b_lo = b & 0xffffffffULL, b_hi = b >> 32;
  uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
  /* the middle column adds three 32-bit terms: no overflow */
  uint64_t mid = (ll >> 32) + (lh & 0xffffffffULL) + (hl & 0xffffffffULL);
  u128 r;
  r.lo = (mid << 32) | (ll & 0xffffffffULL);
  r.hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
  return r;
}

static inline __attribute__((always_inline)) int cmp_u128(u128 a, u128 b) {
  if (a.hi != b.hi) return a.hi < b.hi ? -1 : 1;
  if (a.lo != b.lo) return a.lo < b.lo ? -1 : 1;
  return 0;
}

/* callers keep sums below 2^128 (the documented bounds) */
static inline __attribute__((always_inline)) u128 add_u128(u128 a, u128 b) {
  u128 r;
  r.lo = a.lo + b.lo;
  r.hi = a.hi + b.hi + (r.lo < a.lo);
  return r;
}

/* a >= b */
static inline __attribute__((always_inline)) u128 sub_u128(u128 a, u128 b) {
  u128 r;
  r.lo = a.lo - b.lo;
  r.hi = a.hi - b.hi - (a.lo < b.lo);
  return r;
}

/* floor((hi:lo) / d) and the remainder; the quotient must fit 64 bits (hi < d), else
 * *ok is set to 0 and 0 returned. */
uint64_t div_u128_u64(uint64_t hi, uint64_t lo, uint64_t d, uint64_t *rem, int *ok);
/* (hi:lo) / d rounded half to even (Python's round of the exact ratio); 0 < d < 2^63. */
uint64_t div_half_even_u128(uint64_t hi, uint64_t lo, uint64_t d, int *ok);

static inline uint64_t div_half_even_u64(uint64_t n, uint64_t d) {
  uint64_t q = n / d, r = n % d;
  if (r > d - r || (r == d - r && (q & 1))) q++;
  return q;
}

/* *out = a x b x c x d; never overflows 256 bits. */
void mul4(u256 *out, uint64_t a, uint64_t b, uint64_t c, uint64_t d);
int cmp_u256(const u256 *a, const u256 *b);

#endif
