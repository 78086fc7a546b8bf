//! Which key index a request picks: uniformly from `0..key_space`, or
//! zipfian (`--key-dist zipfian`, YCSB's skew), so that a few hot keys
//! take most requests as in real workloads.
//!
//! The zipfian generator is Gray et al.'s ("Quickly generating
//! billion-record synthetic databases", SIGMOD 1994), the one YCSB's
//! `ZipfianGenerator` uses: rank r (0 = most popular) is drawn with
//! probability about `1 / ((r + 1)^θ · ζ(n, θ))`, where
//! `ζ(n, θ) = Σ_{i=1..n} i^-θ`, from one uniform draw and one `powf`;
//! ranks 0 and 1 get their exact probabilities, the rest Gray's
//! approximation. ζ is computed once per run (see [`zeta`]).
//!
//! Ranks are then scrambled, as YCSB's `ScrambledZipfian` does, so that
//! the hot keys are spread over the key space instead of all sitting at
//! its low end (one server range, one B-tree leaf). YCSB hashes the rank
//! (FNV) modulo the item count, which maps some ranks onto the same key
//! and leaves about a third of the keys (1/e) never drawn; here the hash
//! is made a bijection of `0..key_space` instead ([`Scramble`]: a Feistel
//! network over xxh3, cycle-walked into the key space), so every key is
//! reachable and each has exactly its rank's probability.
//!
//! A pick is pure arithmetic on a precomputed [`KeyPicker`]: no
//! allocation, no lock, randomness from the caller's [`Rng`].
//!
//! ```
//! use cairn_perf::bench::keydist::{KeyDist, KeyPicker};
//! use cairn_perf::bench::rng::Rng;
//! let picker = KeyPicker::new(KeyDist::Zipfian { theta: 0.99 }, 1000);
//! let mut rng = Rng::new(7);
//! let hot = picker.key_of_rank(0);
//! let hits = (0..10_000).filter(|_| picker.pick(&mut rng) == hot).count();
//! assert!(hits > 1_000); // about 13 %, where uniform would give 0.1 %
//! ```

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::rng::Rng;

/// YCSB's default skew.
pub const ZIPF_THETA_DEFAULT: f64 = 0.99;

/// Terms of ζ(n, θ) summed one by one; the rest of the sum, for larger
/// key spaces (up to 2^40), is Euler–Maclaurin's ([`zeta`]). 2^16 `powf`s
/// take well under a millisecond.
pub const ZETA_EXACT_TERMS: u64 = 1 << 16;

/// Rounds of the scrambling Feistel network (4 make a strong permutation
/// when the round function is a good hash).
const FEISTEL_ROUNDS: u64 = 4;

/// How requests choose their key.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum KeyDist {
    Uniform,
    /// Zipfian with skew `theta`, in (0, 1).
    Zipfian {
        theta: f64,
    },
}

impl KeyDist {
    pub fn name(self) -> &'static str {
        match self {
            KeyDist::Uniform => "uniform",
            KeyDist::Zipfian { .. } => "zipfian",
        }
    }

    pub fn theta(self) -> Option<f64> {
        match self {
            KeyDist::Uniform => None,
            KeyDist::Zipfian { theta } => Some(theta),
        }
    }

    /// `uniform`, or `zipfian (theta 0.99)`.
    pub fn describe(self) -> String {
        match self {
            KeyDist::Uniform => "uniform".into(),
            KeyDist::Zipfian { theta } => format!("zipfian (theta {theta})"),
        }
    }
}

/// Picks key indexes in `0..key_space` for one run.
#[derive(Clone, Debug)]
pub struct KeyPicker {
    key_space: u64,
    zipf: Option<(Zipfian, Scramble)>,
}

impl KeyPicker {
    /// Precomputes the generator (ζ for zipfian). `key_space` must be > 0.
    pub fn new(dist: KeyDist, key_space: u64) -> KeyPicker {
        assert!(key_space > 0, "invariant: a key space has keys");
        let zipf = match dist {
            KeyDist::Uniform => None,
            KeyDist::Zipfian { theta } => {
                Some((Zipfian::new(key_space, theta), Scramble::new(key_space)))
            }
        };
        KeyPicker { key_space, zipf }
    }

    /// One key index in `0..key_space`.
    pub fn pick(&self, rng: &mut Rng) -> u64 {
        let key = match &self.zipf {
            None => rng.below(self.key_space),
            Some((z, s)) => s.apply(z.rank(rng)),
        };
        debug_assert!(key < self.key_space);
        key
    }

    /// The key index that rank `rank` (0 = hottest) maps to; for uniform,
    /// the rank itself.
    pub fn key_of_rank(&self, rank: u64) -> u64 {
        match &self.zipf {
            None => rank,
            Some((_, s)) => s.apply(rank),
        }
    }
}

/// ζ(n, θ) = Σ_{i=1..n} i^-θ.
///
/// The first [`ZETA_EXACT_TERMS`] terms are summed (smallest first, for
/// precision); beyond them the Euler–Maclaurin formula to its first
/// derivative term gives the tail:
/// `Σ_{i=a+1..b} f(i) ≈ ∫_a^b f + (f(b) − f(a))/2 + (f'(b) − f'(a))/12`
/// with `f(x) = x^-θ`. The next term is `(f'''(a) − f'''(b))/720`, below
/// 1e-20 at `a = 2^16`: the result is as exact as the f64 sum.
pub fn zeta(n: u64, theta: f64) -> f64 {
    let exact = n.min(ZETA_EXACT_TERMS);
    let mut sum: f64 = (1..=exact).rev().map(|i| (i as f64).powf(-theta)).sum();
    if n > exact {
        sum += zeta_tail(exact as f64, n as f64, theta);
    }
    sum
}

/// `Σ_{i=a+1..b} i^-θ` by Euler–Maclaurin (see [`zeta`]), θ in (0, 1).
fn zeta_tail(a: f64, b: f64, theta: f64) -> f64 {
    let f = |x: f64| x.powf(-theta);
    let df = |x: f64| -theta * x.powf(-theta - 1.0);
    // ∫_a^b x^-θ dx = (b^(1-θ) − a^(1-θ)) / (1 − θ), written with expm1 so
    // that θ near 1 does not cancel catastrophically.
    let s = 1.0 - theta;
    let integral = a.powf(s) * (s * (b / a).ln()).exp_m1() / s;
    integral + (f(b) - f(a)) / 2.0 + (df(b) - df(a)) / 12.0
}

/// Gray et al.'s zipfian rank generator over `0..n`.
#[derive(Clone, Debug)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    zetan: f64,
    alpha: f64,
    eta: f64,
    /// `1 + 0.5^θ`: below it (in units of ζ(n)), the draw is rank 1.
    rank1_bound: f64,
}

impl Zipfian {
    /// `n` > 0 ranks, skew `theta` in (0, 1).
    pub fn new(n: u64, theta: f64) -> Zipfian {
        assert!(n > 0, "invariant: zipfian over no ranks");
        assert!(
            theta > 0.0 && theta < 1.0,
            "invariant: zipfian theta in (0, 1), got {theta}"
        );
        let zetan = zeta(n, theta);
        let zeta2 = zeta(2.min(n), theta);
        // With n <= 2 every draw is rank 0 or 1 and eta is never used (its
        // formula divides by zero at n = 2).
        let eta = if n > 2 {
            (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan)
        } else {
            0.0
        };
        Zipfian {
            n,
            theta,
            zetan,
            alpha: 1.0 / (1.0 - theta),
            eta,
            rank1_bound: 1.0 + 0.5f64.powf(theta),
        }
    }

    /// One rank in `0..n` (0 the most frequent).
    pub fn rank(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < self.rank1_bound || self.n <= 2 {
            return 1.min(self.n - 1);
        }
        let r = self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha);
        // `as` saturates; u close to 1 can round up to n.
        (r as u64).min(self.n - 1)
    }

    /// The zipfian probability of `rank`: `1 / ((rank + 1)^θ · ζ(n, θ))`.
    pub fn probability(&self, rank: u64) -> f64 {
        ((rank + 1) as f64).powf(-self.theta) / self.zetan
    }
}

/// A fixed bijection of `0..n`: a Feistel network over the `bits` bits
/// that hold `n − 1`, with xxh3 as its round function, applied again while
/// the result is `>= n` (cycle walking). The network permutes
/// `0..2^bits`, so from any `x < n` the walk follows x's cycle and meets a
/// value below n at the latest when it comes back to x; since
/// `n > 2^(bits-1)`, fewer than half the values are out of range and a
/// walk takes under 2 steps on average.
///
/// Fixed (not seeded): runs with different seeds, and runs against
/// different servers, share their hot keys.
#[derive(Clone, Debug)]
pub struct Scramble {
    n: u64,
    /// Bits of the low half; the high half has `bits - low_bits`.
    low_bits: u32,
    high_bits: u32,
}

impl Scramble {
    pub fn new(n: u64) -> Scramble {
        assert!(n > 0, "invariant: scramble of an empty range");
        let bits = 64 - (n - 1).leading_zeros();
        Scramble {
            n,
            low_bits: bits / 2,
            high_bits: bits - bits / 2,
        }
    }

    /// The image of `x` (< n).
    pub fn apply(&self, x: u64) -> u64 {
        assert!(x < self.n, "invariant: scramble input {x} < {}", self.n);
        if self.n <= 2 {
            return x;
        }
        let span = 1u64 << (self.low_bits + self.high_bits);
        let mut y = x;
        for _ in 0..span {
            y = self.permute(y);
            if y < self.n {
                return y;
            }
        }
        panic!(
            "invariant: cycle walking returns below {} within {span} steps",
            self.n
        );
    }

    /// One bijection of `0..2^(low_bits + high_bits)`: an unbalanced Feistel
    /// network. Each round maps (l: a bits, r: b bits) to
    /// (r, l ^ F(r) mod 2^a), which is invertible whatever F is, and swaps
    /// the halves' widths; an even number of rounds restores them.
    fn permute(&self, x: u64) -> u64 {
        let (mut a, mut b) = (self.high_bits, self.low_bits);
        let (mut l, mut r) = (x >> b, x & mask(b));
        for round in 0..FEISTEL_ROUNDS {
            let f = xxh3_64_with_seed(&r.to_le_bytes(), round) & mask(a);
            (l, r) = (r, l ^ f);
            (a, b) = (b, a);
        }
        (l << b) | r
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRAWS: usize = 200_000;

    fn counts(picker: &KeyPicker, n: u64, seed: u64) -> Vec<u64> {
        let mut rng = Rng::new(seed);
        let mut c = vec![0u64; n as usize];
        for _ in 0..DRAWS {
            c[picker.pick(&mut rng) as usize] += 1;
        }
        c
    }

    #[test]
    fn every_pick_is_in_the_key_space() {
        for n in [1u64, 2, 3, 7, 64, 65, 1000, 1 << 20, (1 << 20) + 1] {
            for dist in [KeyDist::Uniform, KeyDist::Zipfian { theta: 0.99 }] {
                let p = KeyPicker::new(dist, n);
                let mut rng = Rng::new(n);
                for _ in 0..20_000 {
                    assert!(p.pick(&mut rng) < n, "{dist:?} over {n}");
                }
            }
        }
        // The largest key space the tool accepts.
        let p = KeyPicker::new(KeyDist::Zipfian { theta: 0.5 }, 1 << 40);
        let mut rng = Rng::new(1);
        assert!((0..20_000).all(|_| p.pick(&mut rng) < 1 << 40));
    }

    #[test]
    fn scramble_is_a_bijection_that_spreads_the_low_ranks() {
        for n in [3u64, 5, 100, 1000, 4096, 4097] {
            let s = Scramble::new(n);
            let mut seen = vec![false; n as usize];
            for x in 0..n {
                let y = s.apply(x) as usize;
                assert!(!seen[y], "{n}: {y} hit twice");
                seen[y] = true;
            }
        }
        // The 10 hottest ranks of 10^6 keys do not all sit in one end.
        let s = Scramble::new(1_000_000);
        let hot: Vec<u64> = (0..10).map(|r| s.apply(r)).collect();
        assert!(
            hot.iter().any(|&k| k < 500_000) && hot.iter().any(|&k| k >= 500_000),
            "{hot:?}"
        );
    }

    #[test]
    fn zeta_beyond_the_exact_terms_matches_the_full_sum() {
        for theta in [0.5, 0.99, 0.2] {
            for n in [ZETA_EXACT_TERMS + 1, 300_000, 1_000_000] {
                let full: f64 = (1..=n).rev().map(|i| (i as f64).powf(-theta)).sum();
                let approx = zeta(n, theta);
                assert!(
                    ((approx - full) / full).abs() < 1e-12,
                    "theta {theta} n {n}: {approx} vs {full}"
                );
            }
        }
        // Known value: YCSB's ζ(10^10, 0.99) constant.
        let z = zeta(10_000_000_000, 0.99);
        assert!((z - 26.469_028_201_783_02).abs() < 1e-6, "{z}");
    }

    #[test]
    fn zipfian_hottest_key_draws_its_theoretical_share() {
        let n = 1000;
        let p = KeyPicker::new(KeyDist::Zipfian { theta: 0.99 }, n);
        let z = Zipfian::new(n, 0.99);
        let c = counts(&p, n, 42);
        for rank in [0u64, 1] {
            let want = z.probability(rank);
            let got = c[p.key_of_rank(rank) as usize] as f64 / DRAWS as f64;
            // 200k draws: one standard deviation is under 0.08 %.
            assert!((got - want).abs() < 0.005, "rank {rank}: {got} vs {want}");
        }
        let hottest = c[p.key_of_rank(0) as usize] as f64 / DRAWS as f64;
        assert!(
            hottest > 50.0 / n as f64,
            "{hottest} vs uniform {}",
            1.0 / n as f64
        );
        assert_eq!(
            c.iter().enumerate().max_by_key(|e| e.1).map(|e| e.0 as u64),
            Some(p.key_of_rank(0))
        );
        // Deeper ranks follow the power law within Gray's approximation.
        for rank in [2u64, 9, 99] {
            let want = z.probability(rank);
            let got = c[p.key_of_rank(rank) as usize] as f64 / DRAWS as f64;
            assert!(
                (got / want - 1.0).abs() < 0.35,
                "rank {rank}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn uniform_stays_uniform() {
        let n = 100;
        let c = counts(&KeyPicker::new(KeyDist::Uniform, n), n, 7);
        let expected = DRAWS as f64 / n as f64;
        let chi2: f64 = c
            .iter()
            .map(|&k| (k as f64 - expected).powi(2) / expected)
            .sum();
        // 99 degrees of freedom: mean 99, standard deviation 14.
        assert!(chi2 < 200.0, "chi-square {chi2}: {c:?}");
    }

    #[test]
    fn tiny_key_spaces_still_work() {
        let mut rng = Rng::new(3);
        let one = KeyPicker::new(KeyDist::Zipfian { theta: 0.99 }, 1);
        assert!((0..100).all(|_| one.pick(&mut rng) == 0));
        let two = KeyPicker::new(KeyDist::Zipfian { theta: 0.99 }, 2);
        let zeros = (0..10_000).filter(|_| two.pick(&mut rng) == 0).count();
        // P(rank 0) = 1 / (1 + 2^-0.99) ≈ 0.665.
        assert!((6_300..7_000).contains(&zeros), "{zeros}");
    }
}
