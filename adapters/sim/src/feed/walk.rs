//! The pure random walk behind the simulated feed: no timers, no I/O.

use chrono::{DateTime, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::Quote;
use ordermon_domain::values::{Price, Quantity};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};

use super::{FeedConfig, FeedError, FeedInstrument, check_instrument};

/// Largest move of one step, in ticks (keeps a pathological volatility from
/// overflowing the price range).
const MAX_STEP_TICKS: f64 = 1.0e9;

/// The random walk of one instrument.
#[derive(Debug, Clone)]
struct Walk {
    instrument_id: InstrumentId,
    tick: Decimal,
    mid: Decimal,
    /// Fraction of a tick not yet applied to `mid`.
    carry: f64,
    size: Quantity,
}

/// The pure quote generator: every call to [`QuoteGenerator::next_quotes`] moves
/// each walk one step. No timers, so tests drive it directly.
#[derive(Debug)]
pub struct QuoteGenerator {
    rng: StdRng,
    walks: Vec<Walk>,
    volatility: f64,
    spread_ticks: u32,
    size: Quantity,
}

impl QuoteGenerator {
    /// A generator for the configured instruments, seeded from `config.seed`
    /// (or from the operating system).
    ///
    /// # Errors
    /// Returns a [`FeedError`] when the configuration is invalid.
    pub fn new(config: &FeedConfig) -> Result<Self, FeedError> {
        config.validate()?;
        let rng = config
            .seed
            .map_or_else(StdRng::from_os_rng, StdRng::seed_from_u64);
        let mut generator = Self {
            rng,
            walks: Vec::with_capacity(config.instruments.len()),
            volatility: config.volatility,
            spread_ticks: config.spread_ticks,
            size: config.size,
        };
        for instrument in &config.instruments {
            generator.add(instrument.clone())?;
        }
        Ok(generator)
    }

    /// Adds an instrument; returns `false` (and changes nothing) when it is
    /// already simulated.
    ///
    /// # Errors
    /// Returns a [`FeedError`] when its start price is off tick.
    pub fn add(&mut self, instrument: FeedInstrument) -> Result<bool, FeedError> {
        check_instrument(&instrument)?;
        if self
            .walks
            .iter()
            .any(|w| w.instrument_id == instrument.instrument_id)
        {
            return Ok(false);
        }
        let tick = instrument.tick_size.get();
        // Start at least high enough that the bid is one tick above zero.
        let mid = instrument.start_price.get().max(self.floor(tick));
        self.walks.push(Walk {
            instrument_id: instrument.instrument_id,
            tick,
            mid,
            carry: 0.0,
            size: instrument.size.unwrap_or(self.size),
        });
        Ok(true)
    }

    /// The simulated instruments, in the order they were added.
    #[must_use]
    pub fn instruments(&self) -> Vec<InstrumentId> {
        self.walks.iter().map(|w| w.instrument_id.clone()).collect()
    }

    /// Moves every walk one step and returns one quote per instrument, stamped `ts`.
    pub fn next_quotes(&mut self, ts: DateTime<Utc>) -> Vec<Quote> {
        let mut quotes = Vec::with_capacity(self.walks.len());
        for i in 0..self.walks.len() {
            let z = standard_normal(&mut self.rng);
            if let Some(quote) = self.step(i, z, ts) {
                quotes.push(quote);
            }
        }
        quotes
    }

    /// The lowest mid the walk may take: the bid then stays one tick above zero.
    fn floor(&self, tick: Decimal) -> Decimal {
        Decimal::from(self.spread_ticks / 2 + 1) * tick
    }

    fn step(&mut self, i: usize, z: f64, ts: DateTime<Utc>) -> Option<Quote> {
        let volatility = self.volatility;
        let floor = self.floor(self.walks.get(i)?.tick);
        let half = Decimal::from(self.spread_ticks / 2);
        let spread = Decimal::from(self.spread_ticks);
        let walk = self.walks.get_mut(i)?;
        let (mid_f, tick_f) = (walk.mid.to_f64()?, walk.tick.to_f64()?);
        let mut ticks = mid_f * volatility * z / tick_f + walk.carry;
        if !ticks.is_finite() {
            ticks = 0.0;
        }
        let ticks = ticks.clamp(-MAX_STEP_TICKS, MAX_STEP_TICKS);
        let whole = ticks.trunc();
        walk.carry = ticks - whole;
        let moved = Decimal::from_f64(whole)
            .and_then(|w| w.checked_mul(walk.tick))
            .and_then(|d| walk.mid.checked_add(d))
            .unwrap_or(walk.mid);
        let mut mid = moved;
        if mid < floor {
            mid = floor;
            walk.carry = 0.0;
        }
        // A move out of the storable range is refused: the walk stays put.
        if let Some(q) = make_quote(walk, mid, half, spread, ts) {
            walk.mid = mid;
            return Some(q);
        }
        make_quote(walk, walk.mid, half, spread, ts)
    }
}

/// The quote around `mid`: bid `half` ticks below it, ask `spread` ticks above the bid.
fn make_quote(
    walk: &Walk,
    mid: Decimal,
    half: Decimal,
    spread: Decimal,
    ts: DateTime<Utc>,
) -> Option<Quote> {
    let bid = mid.checked_sub(half.checked_mul(walk.tick)?)?;
    let ask = bid.checked_add(spread.checked_mul(walk.tick)?)?;
    Some(Quote {
        instrument_id: walk.instrument_id.clone(),
        bid: Price::new(bid).ok()?,
        ask: Price::new(ask).ok()?,
        bid_size: walk.size,
        ask_size: walk.size,
        ts,
    })
}

/// One draw of a standard normal variable (Box–Muller).
fn standard_normal(rng: &mut StdRng) -> f64 {
    // `random` is in [0, 1); 1 - u is in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
