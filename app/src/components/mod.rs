//! Reusable pieces: the signed-in frame, the password field island, notices.

mod frame;
mod new_password;
mod notice;
mod password_field;

pub use frame::AppFrame;
pub use new_password::NewPasswordFields;
pub use notice::{ErrorNotice, InfoNotice};
pub use password_field::PasswordField;
