/* Wide unsigned arithmetic for exact money checks (see wide.h). */
#include "wide.h"

uint64_t div_u128_u64(uint64_t hi, uint64_t lo, uint64_t d, uint64_t *rem, int *ok) {
  if (d == 0 || hi >= d) { *ok = 0; *rem = 0; return 0; }
  if (hi == 0) { *rem = lo % d; return lo / d; }
  /* restoring division, one bit at a time; r < d throughout */
  uint64_t r = hi, q = 0;
  for (int i = 63; i >= 0; i--) {
    uint64_t top = r >> 63;
    r = (r << 1) | ((lo >> i) & 1);
    q <<= 1;
    if (top || r >= d) { r -= d; q |= 1; }
  }
  *rem = r;
  return q;
}

uint64_t div_half_even_u128(uint64_t hi, uint64_t lo, uint64_t d, int *ok) {
  uint64_t r;
  uint64_t q = div_u128_u64(hi, lo, d, &r, ok);
  if (r > d - r || (r == d - r && (q & 1))) q++;
  return q;
}

static void mul_u256_u64(u256 *x, uint64_t f) {
  uint64_t carry = 0;
  for (int i = 0; i < 4; i++) {
    u128 p = mul_64x64(x->w[i], f);
    p.lo += carry;
    p.hi += (p.lo < carry);
    x->w[i] = p.lo;
    carry = p.hi;
  }
}

void mul4(u256 *out, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  u128 ab = mul_64x64(a, b);
  out->w[0] = ab.lo; out->w[1] = ab.hi; out->w[2] = 0; out->w[3] = 0;
  mul_u256_u64(out, c);
  mul_u256_u64(out, d);
}

int cmp_u256(const u256 *a, const u256 *b) {
  for (int i = 3; i >= 0; i--)
    if (a->w[i] != b->w[i]) return a->w[i] < b->w[i] ? -1 : 1;
  return 0;
}
