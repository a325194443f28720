//! Detectors named in configuration: a rule says `detector = { kind =
//! "zscore", threshold = 5 }` and the service builds it once per series.

use serde::{Deserialize, Serialize};

use super::{
    ConfigError, Detector, Ewma, EwmaConfig, Fusion, FusionConfig, MadConfig, MedianMad,
    RollingZScore, Seasonal, SeasonalConfig, ZScoreConfig,
};

/// A univariate detector and its parameters, tagged by `kind`. Parameters left
/// out take their defaults; unknown ones are an error. The isolation forest is
/// multivariate and has its own configuration ([`super::IsolationForestConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetectorSpec {
    /// A [`RollingZScore`].
    #[serde(rename = "zscore")]
    ZScore(ZScoreConfig),
    /// An [`Ewma`] detector.
    Ewma(EwmaConfig),
    /// A [`MedianMad`] detector.
    Mad(MadConfig),
    /// A [`Seasonal`] detector.
    Seasonal(SeasonalConfig),
    /// A [`Fusion`] of other detectors.
    Fusion(FusionConfig),
}

impl DetectorSpec {
    /// The `kind` tag.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ZScore(_) => "zscore",
            Self::Ewma(_) => "ewma",
            Self::Mad(_) => "mad",
            Self::Seasonal(_) => "seasonal",
            Self::Fusion(_) => "fusion",
        }
    }

    /// Checks the parameters without building anything.
    ///
    /// # Errors
    /// The detector's [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::ZScore(c) => c.validate(),
            Self::Ewma(c) => c.validate(),
            Self::Mad(c) => c.validate(),
            Self::Seasonal(c) => c.validate(),
            Self::Fusion(c) => c.validate(),
        }
    }

    /// A fresh detector for one series.
    ///
    /// # Errors
    /// The detector's [`ConfigError`] when the parameters are invalid.
    pub fn build(&self) -> Result<Box<dyn Detector>, ConfigError> {
        Ok(match self {
            Self::ZScore(c) => Box::new(RollingZScore::new(c)?),
            Self::Ewma(c) => Box::new(Ewma::new(c)?),
            Self::Mad(c) => Box::new(MedianMad::new(c)?),
            Self::Seasonal(c) => Box::new(Seasonal::new(c)?),
            Self::Fusion(c) => Box::new(Fusion::new(c)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kind_tagged_specs_with_defaults() {
        let spec: DetectorSpec =
            serde_json::from_str(r#"{"kind":"zscore","threshold":5.0}"#).unwrap();
        assert_eq!(
            spec,
            DetectorSpec::ZScore(ZScoreConfig {
                threshold: 5.0,
                ..ZScoreConfig::default()
            })
        );
        let spec: DetectorSpec = serde_json::from_str(
            r#"{"kind":"fusion","detectors":[{"kind":"mad","direction":"up"},{"kind":"seasonal"}]}"#,
        )
        .unwrap();
        let DetectorSpec::Fusion(fusion) = &spec else {
            panic!("{spec:?}")
        };
        assert_eq!(fusion.min_agree, 2);
        assert_eq!(fusion.detectors[1].kind(), "seasonal");
        assert!(spec.build().is_ok());
    }

    #[test]
    fn round_trips_every_kind() {
        let specs = vec![
            DetectorSpec::ZScore(ZScoreConfig::default()),
            DetectorSpec::Ewma(EwmaConfig::default()),
            DetectorSpec::Mad(MadConfig::default()),
            DetectorSpec::Seasonal(SeasonalConfig::default()),
            DetectorSpec::Fusion(FusionConfig {
                detectors: vec![DetectorSpec::Ewma(EwmaConfig::default())],
                min_agree: 1,
            }),
        ];
        for spec in specs {
            let json = serde_json::to_string(&spec).unwrap();
            assert!(
                json.contains(&format!(r#""kind":"{}""#, spec.kind())),
                "{json}"
            );
            let back: DetectorSpec = serde_json::from_str(&json).unwrap();
            assert_eq!(back, spec);
            assert!(back.build().is_ok());
        }
    }

    #[test]
    fn rejects_unknown_fields_and_kinds() {
        assert!(serde_json::from_str::<DetectorSpec>(r#"{"kind":"zscore","windw":3}"#).is_err());
        assert!(serde_json::from_str::<DetectorSpec>(r#"{"kind":"prophet"}"#).is_err());
    }

    #[test]
    fn build_reports_the_invalid_member() {
        let spec: DetectorSpec = serde_json::from_str(
            r#"{"kind":"fusion","min_agree":1,"detectors":[{"kind":"ewma"},{"kind":"mad","threshold":-1}]}"#,
        )
        .unwrap();
        let err = spec.build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "fusion: detector 1: mad: `threshold` must be a finite number above 0, got -1"
        );
    }
}
