//! The first admin of a deployment: `auth.bootstrap_admin` names a user
//! created at start, as an active admin, when missing. Tokens act only for
//! users that exist, so without it (or the demo users, or `monitor-server
//! token --create`) nobody could create the first user.

use anyhow::Context as _;
use ordermon_application::{AppError, CreateUser, Engine};
use ordermon_domain::ids::UserId;
use ordermon_domain::user::{Role, UserStatus};

/// Creates `id` as an active admin unless a user has that id; an existing
/// user is left as it is (a warning says so when it is not an active admin).
///
/// # Errors
/// An invalid id, or the store failing.
pub(crate) async fn ensure_admin(engine: &Engine, id: &str) -> anyhow::Result<()> {
    let id = UserId::new(id).with_context(|| format!("`{id}` is not a valid user id"))?;
    match engine.users.get(&id).await {
        Ok(user) => {
            if user.role != Role::Admin || user.status != UserStatus::Active {
                tracing::warn!(
                    user_id = %id,
                    role = user.role.as_str(),
                    status = user.status.as_str(),
                    "auth.bootstrap_admin names a user that is not an active admin; left as it is"
                );
            }
            return Ok(());
        }
        Err(AppError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let created = engine
        .users
        .create(CreateUser {
            id: id.clone(),
            name: id.to_string(),
            status: UserStatus::Active,
            role: Role::Admin,
            account_type: Default::default(),
            limits: Default::default(),
        })
        .await;
    match created {
        Ok(_) => {
            tracing::info!(user_id = %id, "created the bootstrap admin");
            Ok(())
        }
        // Another instance created it first.
        Err(AppError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
