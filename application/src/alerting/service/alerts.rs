//! Alerts through the API: listings filtered by state, severity, rule and
//! labels, one alert, and the changes a person makes (acknowledge, resolve),
//! which the worker carries out.

use ordermon_domain::alert::matcher::{Matcher, all_match};
use ordermon_domain::alert::{Alert, AlertState, Severity};
use ordermon_domain::ids::{AlertId, RuleName, UserId};
use ordermon_domain::ports::{AlertQuery, Page};
use tokio::sync::oneshot;

use super::{AlertingService, limit, visible};
use crate::alerting::book::BookError;
use crate::alerting::worker::Command;
use crate::engine::Scope;
use crate::error::AppError;

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// States (empty = any).
    pub states: Vec<AlertState>,
    /// Severities (empty = any).
    pub severities: Vec<Severity>,
    /// One rule.
    pub rule: Option<RuleName>,
    /// Label matchers, all of which must match.
    pub labels: Vec<Matcher>,
    /// Admins: one user's alerts.
    pub user: Option<UserId>,
    /// Alerts older than this one.
    pub cursor: Option<AlertId>,
    /// Page size (1–500, default 100).
    pub limit: Option<u32>,
}

impl AlertingService {
    /// A page of alerts the caller may see, newest first.
    ///
    /// # Errors
    /// A bad limit; store failures.
    pub async fn list_alerts(
        &self,
        scope: &Scope,
        f: AlertFilter,
    ) -> Result<Page<Alert>, AppError> {
        let limit = limit(f.limit)?;
        let user = match scope {
            Scope::All => f.user.clone(),
            Scope::User(me) => {
                if f.user.as_ref().is_some_and(|u| u != me) {
                    return Err(AppError::Forbidden);
                }
                Some(me.clone())
            }
        };
        let mut items = Vec::new();
        let mut before = f.cursor;
        let mut scanned = 0u32;
        // Labels are filtered here: read pages until the page is full, the
        // store is exhausted, or ten pages were scanned (the cursor then
        // resumes where the scan stopped).
        loop {
            let page = self
                .persistence
                .alerts
                .list_alerts(&AlertQuery {
                    user_id: user.clone(),
                    states: f.states.clone(),
                    severities: f.severities.clone(),
                    rule: f.rule.clone(),
                    before,
                    limit,
                })
                .await?;
            let exhausted = page.len() < limit as usize;
            for a in page {
                before = Some(a.id);
                scanned += 1;
                if visible(scope, a.user_id.as_ref()) && all_match(&f.labels, &a.labels) {
                    items.push(a);
                    if items.len() == limit as usize {
                        break;
                    }
                }
            }
            if exhausted && items.len() < limit as usize {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
            if items.len() == limit as usize || scanned >= limit.saturating_mul(10) {
                return Ok(Page {
                    items,
                    next_cursor: before.map(|b| b.to_string()),
                });
            }
        }
    }

    /// One alert the caller may see.
    ///
    /// # Errors
    /// NotFound (unknown or not the caller's); store failures.
    pub async fn get_alert(&self, scope: &Scope, id: AlertId) -> Result<Alert, AppError> {
        match self.persistence.alerts.get_alert(id).await? {
            Some(a) if visible(scope, a.user_id.as_ref()) => Ok(a),
            _ => Err(AppError::NotFound("alert")),
        }
    }

    async fn change(
        &self,
        scope: &Scope,
        id: AlertId,
        by: &str,
        resolve: bool,
    ) -> Result<Alert, AppError> {
        let stored = self.get_alert(scope, id).await?;
        if stored.state == AlertState::Resolved {
            return Err(AppError::Conflict {
                code: "alert_resolved",
                message: "the alert is resolved".to_owned(),
            });
        }
        let (reply, rx) = oneshot::channel();
        let cmd = if resolve {
            Command::Resolve {
                id,
                by: by.to_owned(),
                reply,
            }
        } else {
            Command::Ack {
                id,
                by: by.to_owned(),
                reply,
            }
        };
        self.ask(cmd).await?;
        let outcome = rx
            .await
            .map_err(|_| AppError::Unavailable("alerting is stopped".to_owned()))?;
        let alert = match outcome {
            Ok(a) => a,
            Err(BookError::Alert(_)) => {
                return Err(AppError::Conflict {
                    code: "alert_resolved",
                    message: "the alert is resolved".to_owned(),
                });
            }
            Err(BookError::NotFound) => {
                // Resolved meanwhile, or not this instance's.
                return Err(AppError::Conflict {
                    code: "alert_not_active",
                    message: "the alert is not active on this instance".to_owned(),
                });
            }
        };
        self.sync().await;
        Ok(alert)
    }

    /// Acknowledges an alert: no more repeats, no escalation.
    ///
    /// # Errors
    /// NotFound; Conflict when it is resolved.
    pub async fn acknowledge(
        &self,
        scope: &Scope,
        id: AlertId,
        by: &str,
    ) -> Result<Alert, AppError> {
        self.change(scope, id, by, false).await
    }

    /// Resolves an alert by hand (it is not raised again until its condition
    /// has cleared once).
    ///
    /// # Errors
    /// NotFound; Conflict when it is resolved already.
    pub async fn resolve(&self, scope: &Scope, id: AlertId, by: &str) -> Result<Alert, AppError> {
        self.change(scope, id, by, true).await
    }
}
