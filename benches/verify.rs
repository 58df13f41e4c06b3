//! The hot paths against their floors, measured in one run: `Verifier::verify` against a
//! bare `verify_strict` over the same signing inputs, `Minter::mint` against a bare
//! `sign`, a hit in mdtoken's verified-token cache against a miss, and for reference
//! jsonwebtoken's `decode` of the same tokens.
//!
//! Criterion reports absolute times; the summary printed at the end reports ratios from
//! a paired, interleaved loop run in the same process, which is what the targets bind.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use mdtoken::key::SecretKey;
use mdtoken::keyring::KeyRing;
use mdtoken::mint::{Expiry, Minter};
use mdtoken::verify::Verifier;

const ISSUER: &str = "https://mdtoken.example";
const AUDIENCE: &str = "mass-deployment";
/// Distinct tokens cycled through, so nothing is measured on one hot token.
const TOKENS: usize = 1024;
/// Calls per side in one round of the ratio loop: short rounds, so load from other
/// processes falls on both sides of a pair alike.
const CHUNK: usize = 64;
/// Paired rounds of the ratio loop (twenty passes over the tokens per side); the median
/// of the per-round ratios is reported.
const ROUNDS: usize = 20 * TOKENS / CHUNK;

const VERIFY_TARGET: f64 = 1.05;
const MINT_TARGET: f64 = 1.20;
/// A hit at least 100 times faster than a miss.
const HIT_TARGET: f64 = 0.01;

/// Everything measured, built once: the same tokens feed every verifier.
struct Fixture {
    now: i64,
    minter: Minter,
    /// A separate copy of the minter's key, for the bare `sign` baseline.
    raw_signer: SigningKey,
    verifier: Verifier,
    /// A verifier whose cache already holds every token.
    cached: Verifier,
    /// A verifier whose cache is far smaller than the token set: every call misses,
    /// verifies the signature, and evicts an entry to insert one.
    missing: Verifier,
    raw_key: VerifyingKey,
    jwt_key: DecodingKey,
    jwt_validation: Validation,
    tokens: Vec<String>,
    /// `header.payload` bytes and the decoded signature of each token.
    raw: Vec<(Vec<u8>, Signature)>,
    /// A message the size of a minted token's signing input.
    sign_message: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        // jsonwebtoken reads the system clock, so the tokens are minted at the real time
        // and every verifier is asked about that same instant.
        let now = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970")
                .as_secs(),
        )
        .expect("time fits i64");
        let key = SecretKey::generate();
        let raw_signer = SecretKey::from_pem(&key.to_pem())
            .expect("own PEM parses")
            .signing_key()
            .clone();
        let ring = KeyRing::new(ISSUER, AUDIENCE, key.public(), now).expect("ring");
        let raw_key = *key.public().verifying_key();
        let jwt_key = DecodingKey::from_ed_components(&key.public().x()).expect("jwk x");
        let minter = Minter::new(key, &ring.issuer, &ring.audience);
        let verifier = Verifier::new(&ring, 60);
        let cached = Verifier::with_cache(&ring, 60, 4 * TOKENS, 64 << 20, None);
        let missing = Verifier::with_cache(&ring, 60, 16, 64 << 20, None);

        let mut jwt_validation = Validation::new(Algorithm::EdDSA);
        jwt_validation.set_issuer(&[ISSUER]);
        jwt_validation.set_audience(&[AUDIENCE]);
        jwt_validation.set_required_spec_claims(&["exp", "iss", "aud", "nbf"]);
        jwt_validation.validate_nbf = true;

        let tokens: Vec<String> = (0..TOKENS)
            .map(|i| {
                minter
                    .mint(
                        Some(&format!("rollout {i}")),
                        Expiry::At(now + 30 * 86_400),
                        now,
                    )
                    .expect("mint")
                    .token
            })
            .collect();
        let raw: Vec<(Vec<u8>, Signature)> = tokens
            .iter()
            .map(|t| {
                let (input, sig) = t.rsplit_once('.').expect("three parts");
                let sig: [u8; 64] = mdtoken::b64::decode_array(sig).expect("64-byte signature");
                (input.as_bytes().to_vec(), Signature::from_bytes(&sig))
            })
            .collect();
        let sign_message = raw[0].0.clone();

        let fixture = Self {
            now,
            minter,
            raw_signer,
            verifier,
            cached,
            missing,
            raw_key,
            jwt_key,
            jwt_validation,
            tokens,
            raw,
            sign_message,
        };
        fixture.check();
        fixture
    }

    /// Every path accepts every token before anything is timed.
    fn check(&self) {
        for (i, token) in self.tokens.iter().enumerate() {
            self.verifier
                .verify(token.as_bytes(), self.now)
                .unwrap_or_else(|e| panic!("mdtoken refused token {i}: {e}"));
            self.cached
                .verify(token.as_bytes(), self.now)
                .expect("cached verifier");
            let (msg, sig) = &self.raw[i];
            self.raw_key.verify_strict(msg, sig).expect("raw verify");
            self.jwt_decode(token).expect("jsonwebtoken decode");
        }
        let minted = self
            .minter
            .mint(
                Some("rollout 0"),
                Expiry::At(self.now + 30 * 86_400),
                self.now,
            )
            .expect("mint");
        assert_eq!(minted.token.len(), self.tokens[0].len());
    }

    fn verify(&self, i: usize) -> bool {
        self.verifier
            .verify(black_box(self.tokens[i].as_bytes()), self.now)
            .is_ok()
    }

    /// As the server asks: the result shared with the cache, every check but the
    /// signature run again.
    fn cache_hit(&self, i: usize) -> bool {
        self.cached
            .verify_shared(black_box(self.tokens[i].as_bytes()), self.now)
            .is_ok()
    }

    fn cache_miss(&self, i: usize) -> bool {
        self.missing
            .verify_shared(black_box(self.tokens[i].as_bytes()), self.now)
            .is_ok()
    }

    fn raw_verify(&self, i: usize) -> bool {
        let (msg, sig) = &self.raw[i];
        self.raw_key.verify_strict(black_box(msg), sig).is_ok()
    }

    fn jwt_decode(&self, token: &str) -> jsonwebtoken::errors::Result<serde_json::Value> {
        jsonwebtoken::decode::<serde_json::Value>(token, &self.jwt_key, &self.jwt_validation)
            .map(|d| d.claims)
    }

    fn jwt_verify(&self, i: usize) -> bool {
        self.jwt_decode(black_box(&self.tokens[i])).is_ok()
    }

    fn mint(&self, _i: usize) -> usize {
        self.minter
            .mint(
                Some("rollout 0"),
                Expiry::At(self.now + 30 * 86_400),
                self.now,
            )
            .map(|m| m.token.len())
            .unwrap_or(0)
    }

    fn raw_sign(&self, _i: usize) -> usize {
        self.raw_signer
            .sign(black_box(&self.sign_message))
            .to_bytes()
            .len()
    }
}

fn criterion_benches(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function(BenchmarkId::from_parameter("mdtoken"), |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            assert!(f.verify(i));
        })
    });
    group.bench_function(BenchmarkId::from_parameter("raw_verify_strict"), |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            assert!(f.raw_verify(i));
        })
    });
    group.bench_function(BenchmarkId::from_parameter("jsonwebtoken"), |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            assert!(f.jwt_verify(i));
        })
    });
    group.bench_function(BenchmarkId::from_parameter("mdtoken_cache_hit"), |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            assert!(f.cache_hit(i));
        })
    });
    group.bench_function(BenchmarkId::from_parameter("mdtoken_cache_miss"), |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            assert!(f.cache_miss(i));
        })
    });
    group.finish();

    let mut group = c.benchmark_group("mint");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter("mdtoken"), |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            f.mint(i)
        })
    });
    group.bench_function(BenchmarkId::from_parameter("raw_sign"), |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            f.raw_sign(i)
        })
    });
    group.finish();
}

/// Nanoseconds per call of `op` over tokens `first..first + n`.
fn pass(op: &dyn Fn(usize) -> bool, first: usize, n: usize) -> f64 {
    let start = Instant::now();
    let mut ok = 0usize;
    for i in first..first + n {
        ok += usize::from(op(i % TOKENS));
    }
    let elapsed = start.elapsed();
    assert_eq!(ok, n, "every call must succeed");
    elapsed.as_nanos() as f64 / n as f64
}

/// The `q` quantile (0 ≤ q ≤ 1) of `xs`.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * q).round() as usize]
}

/// One measured comparison: `subject` against `baseline` over the same tokens, in short
/// paired rounds whose order alternates so drift and neighbours' load fall on both sides
/// alike.
struct Ratio {
    name: &'static str,
    subject_ns: f64,
    baseline_ns: f64,
    /// The median of the per-round ratios: what the targets bind.
    ratio: f64,
    /// The ratio of the two sides' fastest-decile rounds: a check on `ratio` that
    /// discounts rounds slowed by other processes.
    floor_ratio: f64,
    target: Option<f64>,
}

fn paired(
    name: &'static str,
    subject: &dyn Fn(usize) -> bool,
    baseline: &dyn Fn(usize) -> bool,
    target: Option<f64>,
) -> Ratio {
    // Warm-up: caches, branch predictors and CPU frequency.
    for _ in 0..2 {
        pass(subject, 0, TOKENS);
        pass(baseline, 0, TOKENS);
    }
    let (mut s, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let first = round * CHUNK;
        let (x, y) = if round.is_multiple_of(2) {
            let x = pass(subject, first, CHUNK);
            (x, pass(baseline, first, CHUNK))
        } else {
            let y = pass(baseline, first, CHUNK);
            (pass(subject, first, CHUNK), y)
        };
        s.push(x);
        b.push(y);
        r.push(x / y);
    }
    Ratio {
        name,
        subject_ns: quantile(&s, 0.5),
        baseline_ns: quantile(&b, 0.5),
        ratio: quantile(&r, 0.5),
        floor_ratio: quantile(&s, 0.1) / quantile(&b, 0.1),
        target,
    }
}

fn ratios(f: &Fixture) -> Vec<Ratio> {
    vec![
        paired(
            "verify/mdtoken vs verify/raw_verify_strict",
            &|i| f.verify(i),
            &|i| f.raw_verify(i),
            Some(VERIFY_TARGET),
        ),
        paired(
            "mint/mdtoken vs mint/raw_sign",
            &|i| f.mint(i) > 0,
            &|i| f.raw_sign(i) > 0,
            Some(MINT_TARGET),
        ),
        paired(
            "verify/mdtoken_cache_hit vs verify/mdtoken_cache_miss",
            &|i| f.cache_hit(i),
            &|i| f.cache_miss(i),
            Some(HIT_TARGET),
        ),
        paired(
            "verify/jsonwebtoken vs verify/raw_verify_strict",
            &|i| f.jwt_verify(i),
            &|i| f.raw_verify(i),
            None,
        ),
        paired(
            "verify/mdtoken vs verify/jsonwebtoken",
            &|i| f.verify(i),
            &|i| f.jwt_verify(i),
            None,
        ),
        paired(
            "verify/mdtoken_cache_hit vs verify/raw_verify_strict",
            &|i| f.cache_hit(i),
            &|i| f.raw_verify(i),
            None,
        ),
    ]
}

fn print_summary(f: &Fixture, results: &[Ratio]) -> bool {
    let mut all_met = true;
    println!();
    println!("== mdtoken benchmark summary ==");
    println!(
        "{TOKENS} distinct tokens of {} bytes; {ROUNDS} paired rounds of {CHUNK} calls a side",
        f.tokens[0].len()
    );
    println!("Ed25519 backend: {}", backend());
    for r in results {
        let verdict = match r.target {
            Some(t) if r.ratio <= t => format!("(target <= {t}: met)"),
            Some(t) => {
                all_met = false;
                format!("(target <= {t}: MISSED)")
            }
            None => "(reference)".to_owned(),
        };
        println!(
            "{:<54} ratio: {:.3} {verdict}   [median {:.0} ns vs {:.0} ns; fastest-decile ratio {:.3}]",
            r.name, r.ratio, r.subject_ns, r.baseline_ns, r.floor_ratio
        );
    }
    all_met
}

/// The curve25519-dalek backend this process runs, by the rule the crate applies: AVX-512
/// IFMA if built in and the CPU has it, else AVX2 if built in and present, else serial.
fn backend() -> String {
    #[cfg(target_arch = "x86_64")]
    let (ifma, avx2) = (
        std::arch::is_x86_feature_detected!("avx512ifma")
            && std::arch::is_x86_feature_detected!("avx512vl"),
        std::arch::is_x86_feature_detected!("avx2"),
    );
    #[cfg(not(target_arch = "x86_64"))]
    let (ifma, avx2) = (false, false);
    let built_avx512 = cfg!(curve25519_dalek_backend = "avx512")
        || (cfg!(target_feature = "avx512ifma") && cfg!(target_feature = "avx512vl"));
    let built_avx2 = cfg!(all(target_arch = "x86_64", target_pointer_width = "64"))
        && !cfg!(any(
            curve25519_dalek_backend = "serial",
            curve25519_dalek_backend = "fiat"
        ));
    let (name, why) = if built_avx512 && ifma {
        ("avx512ifma", "built in, CPU has it")
    } else if built_avx2 && avx2 {
        (
            "avx2",
            if built_avx512 {
                "CPU lacks IFMA"
            } else {
                "AVX-512 not built in"
            },
        )
    } else {
        ("serial", "no vector backend built in or supported")
    };
    format!("{name} ({why})")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    // As criterion decides: a plain `cargo test --benches` run only smoke-tests.
    let benchmarking = has("--bench") && !has("--test") && !has("--list");

    let fixture = Fixture::new();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .without_plots()
        .configure_from_args();
    criterion_benches(&mut c, &fixture);
    c.final_summary();

    if benchmarking {
        let results = ratios(&fixture);
        if !print_summary(&fixture, &results) {
            println!("one or more ratio targets missed");
        }
    }
}
