//! Fusion: several detectors judge the same sample, and the sample is
//! anomalous only when at least `min_agree` of them call it anomalous on the
//! same side.
//!
//! The rule is a vote, not a weighted mean of scores, because the point is
//! that one noisy detector alone never pages: with a mean, one detector far
//! past its threshold plus two lukewarm ones can cross the line. A vote keeps
//! each member's own threshold meaning what it says, is easy to explain in an
//! alert ("2 of 3 detectors: above baseline"), and requires that the members
//! agree on the *side*: a z-score seeing a sample as high while the seasonal
//! baseline sees it as low is disagreement, not two votes. Members that
//! differ in what they remember (a short window, a robust window, a weekly
//! baseline) make different mistakes, so requiring two of them removes most
//! single-detector false alarms at little cost in recall (see
//! `docs/detectors.md`).
//!
//! The fused score is the mean, over the members that gave a verdict, of their
//! [`Verdict::evidence`] on the winning side (0 for members on the other
//! side): 0.5 means "at threshold on average". The verdict's threshold is 0.5,
//! so a fusion nested in a fusion contributes its score as its evidence.
//! While fewer than `min_agree` members are warm the fusion answers `None`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::spec::DetectorSpec;
use super::{ConfigError, Detector, Side, Verdict};

/// Configuration of a [`Fusion`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionConfig {
    /// The member detectors, each fed every sample.
    pub detectors: Vec<DetectorSpec>,
    /// Members that must flag the sample on the same side (default 2).
    #[serde(default = "default_min_agree")]
    pub min_agree: usize,
}

fn default_min_agree() -> usize {
    2
}

impl FusionConfig {
    /// Checks the agreement rule and every member.
    ///
    /// # Errors
    /// [`ConfigError::EmptyFusion`], [`ConfigError::Agreement`], or
    /// [`ConfigError::Member`] wrapping the first invalid member's error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.detectors.is_empty() {
            return Err(ConfigError::EmptyFusion);
        }
        if !(1..=self.detectors.len()).contains(&self.min_agree) {
            return Err(ConfigError::Agreement {
                min_agree: self.min_agree,
                members: self.detectors.len(),
            });
        }
        for (index, spec) in self.detectors.iter().enumerate() {
            spec.validate().map_err(|source| ConfigError::Member {
                index,
                source: Box::new(source),
            })?;
        }
        Ok(())
    }
}

/// Several detectors voting on each sample.
#[derive(Debug)]
pub struct Fusion {
    members: Vec<Box<dyn Detector>>,
    min_agree: usize,
}

/// The evidence at which a fused score stands at the members' thresholds.
const FUSED_THRESHOLD: f64 = 0.5;

impl Fusion {
    /// Builds every member.
    ///
    /// # Errors
    /// When the configuration is invalid (see [`FusionConfig::validate`]).
    pub fn new(config: &FusionConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let members = config
            .detectors
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                spec.build().map_err(|source| ConfigError::Member {
                    index,
                    source: Box::new(source),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self::from_members(members, config.min_agree))
    }

    /// A fusion of detectors built elsewhere. `min_agree` is clamped to
    /// `1..=members.len()`.
    #[must_use]
    pub fn from_members(mut members: Vec<Box<dyn Detector>>, min_agree: usize) -> Self {
        // held per series for the service's lifetime: no spare capacity
        members.shrink_to_fit();
        let min_agree = min_agree.clamp(1, members.len().max(1));
        Self { members, min_agree }
    }
}

/// One side's tally of the members' verdicts.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    votes: usize,
    evidence: f64,
}

impl Detector for Fusion {
    fn observe(&mut self, t: DateTime<Utc>, x: f64) -> Option<Verdict> {
        let (mut up, mut down) = (Tally::default(), Tally::default());
        let mut warm = 0;
        // Every member sees every sample, so each stays in step with the series.
        for member in &mut self.members {
            let Some(verdict) = member.observe(t, x) else {
                continue;
            };
            warm += 1;
            let tally = match verdict.side {
                Side::Up => &mut up,
                Side::Down => &mut down,
            };
            tally.votes += usize::from(verdict.anomalous);
            tally.evidence += verdict.evidence();
        }
        if warm < self.min_agree {
            return None;
        }
        let up_wins = (up.votes, up.evidence) >= (down.votes, down.evidence);
        let (side, winner) = if up_wins {
            (Side::Up, up)
        } else {
            (Side::Down, down)
        };
        Some(Verdict {
            score: winner.evidence / warm as f64,
            threshold: FUSED_THRESHOLD,
            anomalous: winner.votes >= self.min_agree,
            side,
        })
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(self)
            + self.members.capacity() * std::mem::size_of::<Box<dyn Detector>>()
            + self.members.iter().map(|m| m.memory_bytes()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member that replays scripted verdicts.
    #[derive(Debug)]
    struct Scripted(Vec<Option<(f64, Side)>>);

    impl Detector for Scripted {
        fn observe(&mut self, _t: DateTime<Utc>, _x: f64) -> Option<Verdict> {
            let (score, side) = self.0.pop()??;
            Some(Verdict {
                score,
                threshold: 4.0,
                anomalous: score >= 4.0,
                side,
            })
        }

        fn memory_bytes(&self) -> usize {
            0
        }
    }

    fn fuse(scripts: Vec<Option<(f64, Side)>>, min_agree: usize) -> Option<Verdict> {
        let members = scripts
            .into_iter()
            .map(|s| Box::new(Scripted(vec![s])) as Box<dyn Detector>)
            .collect();
        Fusion::from_members(members, min_agree).observe(DateTime::<Utc>::UNIX_EPOCH, 0.0)
    }

    #[test]
    fn one_detector_alone_does_not_page() {
        let v = fuse(
            vec![
                Some((100.0, Side::Up)),
                Some((1.0, Side::Up)),
                Some((0.5, Side::Up)),
            ],
            2,
        )
        .unwrap();
        assert!(!v.anomalous);
        // mean of evidence: (1 + 0.125 + 0.0625) / 3
        assert!((v.score - 1.1875 / 3.0).abs() < 1e-12, "{v:?}");
    }

    #[test]
    fn two_agreeing_on_a_side_page() {
        let v = fuse(
            vec![
                Some((5.0, Side::Down)),
                Some((4.0, Side::Down)),
                Some((0.0, Side::Up)),
            ],
            2,
        )
        .unwrap();
        assert!(v.anomalous && v.side == Side::Down);
    }

    #[test]
    fn disagreeing_sides_are_not_agreement() {
        let v = fuse(
            vec![
                Some((9.0, Side::Up)),
                Some((9.0, Side::Down)),
                Some((1.0, Side::Up)),
            ],
            2,
        )
        .unwrap();
        assert!(!v.anomalous);
    }

    #[test]
    fn waits_until_enough_members_are_warm() {
        assert!(fuse(vec![Some((9.0, Side::Up)), None, None], 2).is_none());
    }

    #[test]
    fn validates_the_rule_and_members() {
        let empty = FusionConfig {
            detectors: vec![],
            min_agree: 1,
        };
        assert_eq!(empty.validate(), Err(ConfigError::EmptyFusion));
        let one = FusionConfig {
            detectors: vec![DetectorSpec::Ewma(Default::default())],
            min_agree: 2,
        };
        assert!(matches!(one.validate(), Err(ConfigError::Agreement { .. })));
    }
}
