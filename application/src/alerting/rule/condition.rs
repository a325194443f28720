//! What a validated rule tests: a threshold, a detector, a baseline, a
//! prediction or an isolation forest, with the text listings show for it.

use ordermon_domain::Decimal;

use super::config::{BaselineSpec, PredictSpec};
use super::op::Op;
use crate::alerting::detect::{DetectorSpec, IsolationForestConfig};

/// What a rule tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `value op threshold`.
    Threshold {
        /// The comparison.
        op: Op,
        /// The threshold.
        value: Decimal,
    },
    /// A detector flags the latest sample (and the value passes the floor).
    Detector {
        /// The detector.
        spec: DetectorSpec,
        /// `value op threshold` the value must also meet.
        floor: Option<(Op, Decimal)>,
    },
    /// `value op ratio × baseline`.
    Baseline {
        /// The comparison.
        op: Op,
        /// The baseline.
        spec: BaselineSpec,
    },
    /// The trend reaches the limit within the horizon.
    Predict(PredictSpec),
    /// The isolation forest scores the latest order-flow vector as unusual.
    Forest(IsolationForestConfig),
}

impl Condition {
    /// True when the condition is decided on samples taken every
    /// `alerting.sample_interval` rather than at every evaluation.
    #[must_use]
    pub fn sampled(&self) -> bool {
        !matches!(self, Self::Threshold { .. })
    }

    /// The threshold the value is shown against in annotations.
    #[must_use]
    pub fn threshold(&self) -> Option<Decimal> {
        match self {
            Self::Threshold { value, .. } => Some(*value),
            Self::Detector { floor, .. } => floor.map(|(_, v)| v),
            Self::Predict(p) => Some(p.limit),
            Self::Baseline { .. } | Self::Forest(_) => None,
        }
    }

    /// A short text for listings: `>= 0.5`, `zscore`, `< 0.5 x baseline`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Threshold { op, value } => format!("{} {value}", op.as_str()),
            Self::Detector { spec, floor } => match floor {
                Some((op, v)) => format!("{} and {} {v}", spec.kind(), op.as_str()),
                None => spec.kind().to_owned(),
            },
            Self::Baseline { op, spec } => format!("{} {} x baseline", op.as_str(), spec.ratio),
            Self::Predict(p) => format!(
                "reaches {} within {}",
                p.limit,
                ordermon_domain::duration::format(p.within)
            ),
            Self::Forest(_) => "isolation_forest".to_owned(),
        }
    }
}
