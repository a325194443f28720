//! Request and response bodies of the API. Each derives `ToSchema` so the
//! OpenAPI document is generated from the same types the handlers use; domain
//! newtypes are documented as strings (decimals are strings on the wire).

pub mod accounts;
pub mod alerts;
pub mod auth;
pub mod enums;
pub mod executions;
pub mod formats;
pub mod orders;
pub mod strategies;
pub mod system;
pub mod users;
pub mod wire;

pub use accounts::{AccountSummary, Balance, FillPage, FillView, Portfolio, PositionDto};
pub use auth::{LoginRequest, MeView, RefreshRequest, SetPasswordRequest, TokenResponse};
pub use orders::{
    BatchItem, BatchRequest, BatchResponse, CancelAllResponse, ModifyOrderRequest, OrderPage,
    OrderView, SubmitOrderRequest,
};
pub use system::{
    BarView, BarsView, ComponentHealth, DeadLetterDto, DeadLetterList, DeadLetterQuery, EventPage,
    EventView, HealthReport, InstrumentDto, KillScope, KillSwitchRequest, KillSwitchResponse,
    QuoteView, ReplayRequest, ReplayResponse, StatusReport,
};
pub use users::{CashRequest, CreateUserRequest, Limits, PatchUserRequest, UserPage, UserView};
