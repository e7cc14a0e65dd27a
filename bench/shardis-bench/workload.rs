//! What to send: command templates with placeholders, key and value-size distributions, and a
//! small seeded random generator (so a run is reproducible from its printed seed).

/// splitmix64: fast, good enough for load generation, seedable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((self.next_u64() as u128 * n as u128) >> 64) as u64
        }
    }
    /// Exponential with mean 1 (Poisson inter-arrival times).
    pub fn exp(&mut self) -> f64 {
        -(1.0 - self.unit()).ln()
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum KeyDist {
    Uniform,
    /// Zipfian with exponent theta in (0, 1) (Gray et al.'s generator, as YCSB).
    Zipf(f64),
    Sequential,
    /// Gaussian around the middle of the keyspace, sigma as a fraction of the keyspace.
    Gaussian(f64),
}

impl KeyDist {
    pub fn parse(v: &str) -> Result<KeyDist, String> {
        let (name, param) = match v.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (v, None),
        };
        let p = |d: f64| -> Result<f64, String> {
            param.map_or(Ok(d), |p| {
                p.parse().map_err(|_| format!("bad parameter '{}'", p))
            })
        };
        match name {
            "uniform" => Ok(KeyDist::Uniform),
            "sequential" | "seq" => Ok(KeyDist::Sequential),
            "zipf" | "zipfian" => {
                let t = p(0.99)?;
                if t.is_nan() || t <= 0.0 || t >= 1.0 {
                    return Err("zipf theta must be in (0, 1)".into());
                }
                Ok(KeyDist::Zipf(t))
            }
            "gaussian" | "normal" => {
                let s = p(0.1)?;
                if s.is_nan() || s <= 0.0 {
                    return Err("gaussian sigma must be positive".into());
                }
                Ok(KeyDist::Gaussian(s))
            }
            _ => Err(format!("unknown key distribution '{}'", v)),
        }
    }
}

/// A key generator over `0..n` for one connection.
pub struct Keys {
    n: u64,
    dist: KeyDist,
    next: u64,
    zipf: Option<Zipf>,
}

struct Zipf {
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

impl Keys {
    /// `zetan` is shared between connections (computing it is O(n)).
    pub fn new(n: u64, dist: &KeyDist, start: u64, zetan: Option<f64>) -> Keys {
        let zipf = match dist {
            KeyDist::Zipf(theta) => {
                let zetan = zetan.unwrap_or_else(|| zeta(n, *theta));
                let zeta2 = zeta(2.min(n), *theta);
                let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
                Some(Zipf {
                    theta: *theta,
                    alpha: 1.0 / (1.0 - theta),
                    zetan,
                    eta,
                })
            }
            _ => None,
        };
        Keys {
            n,
            dist: dist.clone(),
            next: start % n,
            zipf,
        }
    }

    pub fn zetan(n: u64, dist: &KeyDist) -> Option<f64> {
        match dist {
            KeyDist::Zipf(t) => Some(zeta(n, *t)),
            _ => None,
        }
    }

    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        match self.dist {
            KeyDist::Uniform => rng.below(self.n),
            KeyDist::Sequential => {
                let k = self.next;
                self.next = (self.next + 1) % self.n;
                k
            }
            KeyDist::Gaussian(sigma) => {
                let mean = self.n as f64 / 2.0;
                let v = mean + rng.normal() * sigma * self.n as f64;
                (v.round().max(0.0) as u64).min(self.n - 1)
            }
            KeyDist::Zipf(_) => match &self.zipf {
                Some(z) => {
                    let u = rng.unit();
                    let uz = u * z.zetan;
                    if uz < 1.0 {
                        0
                    } else if uz < 1.0 + 0.5f64.powf(z.theta) {
                        1.min(self.n - 1)
                    } else {
                        let v = self.n as f64 * (z.eta * u - z.eta + 1.0).powf(z.alpha);
                        (v as u64).min(self.n - 1)
                    }
                }
                None => 0,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum SizeDist {
    Fixed(usize),
    Uniform(usize, usize),
    /// (size, weight) pairs.
    Weighted(Vec<(usize, u32)>),
}

/// Values above this are refused (a typo guard; Redis's default proto-max-bulk-len is 512 MB).
const VALUE_BYTES_MAX: usize = 64 << 20;

impl SizeDist {
    pub fn parse(v: &str) -> Result<SizeDist, String> {
        let n = |s: &str| -> Result<usize, String> {
            let x: usize = s.parse().map_err(|_| format!("bad size '{}'", s))?;
            if x > VALUE_BYTES_MAX {
                return Err(format!("value size {} over {}", x, VALUE_BYTES_MAX));
            }
            Ok(x)
        };
        if v.contains(':') {
            let mut w = Vec::new();
            for part in v.split(',') {
                let (s, wt) = part.split_once(':').ok_or("weighted sizes are N:W,N:W")?;
                w.push((
                    n(s)?,
                    wt.parse().map_err(|_| format!("bad weight '{}'", wt))?,
                ));
            }
            if w.iter().map(|x| x.1 as u64).sum::<u64>() == 0 {
                return Err("weights sum to 0".into());
            }
            return Ok(SizeDist::Weighted(w));
        }
        if let Some((a, b)) = v.split_once('-') {
            let (a, b) = (n(a)?, n(b)?);
            if a > b {
                return Err("value size range MIN-MAX with MIN <= MAX".into());
            }
            return Ok(SizeDist::Uniform(a, b));
        }
        Ok(SizeDist::Fixed(n(v)?))
    }

    pub fn max(&self) -> usize {
        match self {
            SizeDist::Fixed(n) => *n,
            SizeDist::Uniform(_, b) => *b,
            SizeDist::Weighted(w) => w.iter().map(|x| x.0).max().unwrap_or(0),
        }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        match self {
            SizeDist::Fixed(n) => *n,
            SizeDist::Uniform(a, b) => a + rng.below((b - a + 1) as u64) as usize,
            SizeDist::Weighted(w) => {
                let total: u64 = w.iter().map(|x| x.1 as u64).sum();
                let mut r = rng.below(total);
                for (size, wt) in w {
                    if r < *wt as u64 {
                        return *size;
                    }
                    r -= *wt as u64;
                }
                0
            }
        }
    }
}

/// One piece of a command template argument.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Lit(Vec<u8>),
    Key,
    Data,
    Int,
}

/// A command template: arguments made of literal text and placeholders.
#[derive(Clone, Debug)]
pub struct Template {
    args: Vec<Vec<Piece>>,
}

impl Template {
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut args = Vec::new();
        for word in s.split_whitespace() {
            let mut pieces = Vec::new();
            let mut rest = word;
            while !rest.is_empty() {
                let hit = ["__key__", "__data__", "__int__"]
                    .iter()
                    .filter_map(|p| rest.find(p).map(|at| (at, *p)))
                    .min();
                match hit {
                    Some((at, p)) => {
                        if at > 0 {
                            pieces.push(Piece::Lit(rest.as_bytes()[..at].to_vec()));
                        }
                        pieces.push(match p {
                            "__key__" => Piece::Key,
                            "__data__" => Piece::Data,
                            _ => Piece::Int,
                        });
                        rest = &rest[at + p.len()..];
                    }
                    None => {
                        pieces.push(Piece::Lit(rest.as_bytes().to_vec()));
                        rest = "";
                    }
                }
            }
            args.push(pieces);
        }
        if args.is_empty() {
            return Err("empty command template".into());
        }
        Ok(Template { args })
    }
}

/// Builds requests: picks the template, fills placeholders, encodes RESP.
pub struct Generator {
    templates: Vec<Template>,
    /// Index into `templates` for each slot of the ratio wheel.
    wheel: Vec<usize>,
    turn: usize,
    prefix: Vec<u8>,
    keys: Keys,
    sizes: SizeDist,
    data: Vec<u8>,
    pub rng: Rng,
}

impl Generator {
    pub fn new(
        templates: Vec<(Template, u32)>,
        prefix: &str,
        keys: Keys,
        sizes: SizeDist,
        rng: Rng,
    ) -> Generator {
        let mut wheel = Vec::new();
        for (i, (_, w)) in templates.iter().enumerate() {
            for _ in 0..*w {
                wheel.push(i);
            }
        }
        let data = vec![b'x'; sizes.max()];
        Generator {
            templates: templates.into_iter().map(|t| t.0).collect(),
            wheel,
            turn: 0,
            prefix: prefix.as_bytes().to_vec(),
            keys,
            sizes,
            data,
            rng,
        }
    }

    pub fn next(&mut self, out: &mut Vec<u8>) -> Option<Vec<u8>> {
        let &t = self.wheel.get(self.turn % self.wheel.len().max(1))?;
        self.turn = self.turn.wrapping_add(1);
        let key_n = self.keys.next(&mut self.rng);
        let mut key = self.prefix.clone();
        key.extend_from_slice(format!("{:012}", key_n).as_bytes());
        let size = self.sizes.sample(&mut self.rng);
        let tpl = &self.templates[t];
        let mut arg = Vec::new();
        out.extend_from_slice(format!("*{}\r\n", tpl.args.len()).as_bytes());
        let mut used_key = None;
        for pieces in &tpl.args {
            arg.clear();
            for p in pieces {
                match p {
                    Piece::Lit(l) => arg.extend_from_slice(l),
                    Piece::Key => {
                        arg.extend_from_slice(&key);
                        used_key = Some(key.clone());
                    }
                    Piece::Data => arg.extend_from_slice(&self.data[..size.min(self.data.len())]),
                    Piece::Int => arg.extend_from_slice(key_n.to_string().as_bytes()),
                }
            }
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(&arg);
            out.extend_from_slice(b"\r\n");
        }
        Some(used_key.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_fills_placeholders() {
        let t = Template::parse("SET k:__key__ __data__").unwrap();
        let keys = Keys::new(10, &KeyDist::Sequential, 3, None);
        let mut g = Generator::new(vec![(t, 1)], "", keys, SizeDist::Fixed(2), Rng::new(1));
        let mut out = Vec::new();
        let key = g.next(&mut out).unwrap();
        assert_eq!(key, b"000000000003");
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$14\r\nk:000000000003\r\n$2\r\nxx\r\n"
        );
    }

    #[test]
    fn zipf_prefers_low_ranks_and_stays_in_range() {
        let mut k = Keys::new(1000, &KeyDist::Zipf(0.99), 0, None);
        let mut rng = Rng::new(7);
        let mut low = 0;
        for _ in 0..10_000 {
            let v = k.next(&mut rng);
            assert!(v < 1000);
            if v < 10 {
                low += 1;
            }
        }
        // Under a uniform distribution 1 % would fall below 10; zipf(0.99) puts ~40 % there.
        assert!(low > 2000, "low = {}", low);
    }

    #[test]
    fn size_distributions_parse_and_sample() {
        assert_eq!(SizeDist::parse("3").unwrap(), SizeDist::Fixed(3));
        let u = SizeDist::parse("10-20").unwrap();
        let w = SizeDist::parse("32:1,1024:0").unwrap();
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            let s = u.sample(&mut rng);
            assert!((10..=20).contains(&s));
            assert_eq!(w.sample(&mut rng), 32);
        }
        assert!(SizeDist::parse("20-10").is_err());
    }
}
