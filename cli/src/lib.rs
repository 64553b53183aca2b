//! What the `stockroom` command line does, apart from reading its arguments (README
//! "Operator CLI"): each command a module, every call to the API through `api::Api`.

pub mod api;
pub mod campaign;
pub mod import;
pub mod ops;
pub mod rehearse;
pub mod watch;

pub use api::{Api, CliError, Exit};
pub use campaign::{campaign_put, campaign_show, CampaignTerms};
pub use import::{import, read_rows, ImportSummary, Refused, Row};
