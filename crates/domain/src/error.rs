//! The errors a use case can end in, each meaning one thing to a caller.

use crate::ports::StoreError;

/// Why a use case failed. Adapters (HTTP, WebSocket) map each variant to one
/// status code, so a variant must never mean two different things to a client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DomainError {
    /// The input broke a rule of the domain (a bad email, a too-long name, ...).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The caller could not be authenticated: bad credentials, an unverified
    /// account, or an invalid, expired or revoked token. Deliberately carries no
    /// detail, so that callers cannot tell these cases apart.
    #[error("not authenticated")]
    Unauthorized,
    /// Authenticated, but not allowed to do this (and allowed to know the
    /// thing exists).
    #[error("not allowed")]
    Forbidden,
    /// Authenticated (or not), but refused for a reason the caller is told
    /// ([`Refusal`] names it).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The thing does not exist, or the caller may not know that it does
    /// (a private room they are not in answers exactly like a missing one).
    #[error("{0} not found")]
    NotFound(Missing),
    /// The request collides with existing state.
    #[error(transparent)]
    Conflict(#[from] ConflictError),
    /// The events asked for were pruned from the room's log (retention):
    /// the caller must reload the room (its details, members and recent
    /// history) and read on from its current `last_pos`.
    #[error("the room's events after this position were pruned; reload the room")]
    ResyncRequired,
    /// A dependency (the database) is not answering; retrying later may work.
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    /// Too many attempts in too short a time (an abuse limit); the same
    /// request may succeed after `retry_after`.
    #[error("rate limited; retry in {retry_after:?}")]
    RateLimited {
        /// How long the caller should wait before trying again.
        retry_after: std::time::Duration,
    },
    /// A fault on our side that the caller cannot fix (a corrupt row, a hashing
    /// failure). Logged with detail, shown to clients without it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for DomainError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::Duplicate | StoreError::Failure(_) => Self::Internal(error.to_string()),
        }
    }
}

/// A value that does not satisfy the domain's rules, named so that a client
/// can tell which field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Not a syntactically valid email address, or longer than 254 characters.
    #[error("email must be a valid address of at most 254 characters")]
    Email,
    /// Not the SHA-256 of a password as 64 hexadecimal characters.
    #[error("password must be the SHA-256 of the password as 64 hexadecimal characters")]
    PasswordDigest,
    /// A display name that is empty after trimming, too long, or holds control characters.
    #[error("display_name must be 1 to 64 characters without control characters")]
    DisplayName,
    /// A room name that is empty after trimming, too long, or holds control characters.
    #[error("name must be 1 to 100 characters without control characters")]
    RoomName,
    /// A topic over 1000 characters, or with control characters.
    #[error("topic must be at most 1000 characters")]
    Topic,
    /// A room search text over 100 characters, or with control characters.
    #[error("q must be at most 100 characters without control characters")]
    RoomSearch,
    /// Not a visibility the caller may choose.
    #[error("visibility must be \"public\" or \"private\"")]
    Visibility,
    /// Not a role.
    #[error("role must be \"owner\", \"admin\" or \"member\"")]
    Role,
    /// A message body that is empty after trimming or over 4000 characters.
    #[error("body must be 1 to 4000 characters after trimming")]
    MessageBody,
    /// A client message id that is empty, over 64 characters, or has control characters.
    #[error("client_msg_id must be 1 to 64 characters without control characters")]
    ClientMsgId,
    /// A page size outside 1 to 100.
    #[error("limit must be between 1 and 100")]
    PageLimit,
    /// A negative sequence number.
    #[error("sequence numbers are never negative")]
    Seq,
    /// A negative event position.
    #[error("positions are never negative")]
    Pos,
    /// A position the room's log has not reached: not one this server gave.
    #[error("after_pos is beyond the room's last_pos")]
    PosAhead,
    /// A direct conversation with oneself.
    #[error("a direct conversation needs another user")]
    DirectWithSelf,
    /// A request naming a user neither by `user_id` nor by `email`, or by both.
    #[error("name the user by exactly one of user_id or email")]
    UserRef,
    /// A search text that is too long or holds control characters.
    #[error("q must be at most 100 characters without control characters")]
    Search,
    /// Not an instance role.
    #[error("role must be \"member\" or \"admin\"")]
    InstanceRole,
    /// An invitation's number of uses outside its bounds.
    #[error("uses must be between 1 and 1000")]
    InviteUses,
    /// An invitation's lifetime outside its bounds.
    #[error("expires_in must be between 60 seconds and 90 days")]
    InviteLifetime,
    /// `reply_to` is not a message of this room.
    #[error("reply_to must be a message of this room")]
    Reply,
    /// Too many users mentioned, or one who is not a member of the room.
    #[error("mentions must be at most 50 members of this room")]
    Mentions,
    /// Not one emoji.
    #[error("emoji must be exactly one emoji of at most 32 bytes")]
    Emoji,
    /// A read marker beyond the room's newest message.
    #[error("seq is beyond the room's last_seq")]
    SeqAhead,
    /// A search text that is empty, too long or has control characters.
    #[error("q must be 1 to 200 characters without control characters")]
    SearchText,
    /// A search page size out of range.
    #[error("limit must be between 1 and 50")]
    SearchLimit,
}

impl ValidationError {
    /// A stable, machine-readable code for this error (`snake_case`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Email => "invalid_email",
            Self::PasswordDigest => "invalid_password",
            Self::DisplayName => "invalid_display_name",
            Self::RoomName => "invalid_name",
            Self::Topic => "invalid_topic",
            Self::RoomSearch => "invalid_query",
            Self::Visibility => "invalid_visibility",
            Self::Role => "invalid_role",
            Self::MessageBody => "invalid_body",
            Self::ClientMsgId => "invalid_client_msg_id",
            Self::PageLimit => "invalid_limit",
            Self::Seq => "invalid_seq",
            Self::Pos | Self::PosAhead => "invalid_pos",
            Self::DirectWithSelf => "direct_with_self",
            Self::UserRef => "invalid_user",
            Self::Search => "invalid_query",
            Self::InstanceRole => "invalid_role",
            Self::InviteUses => "invalid_uses",
            Self::InviteLifetime => "invalid_expires_in",
            Self::Reply => "invalid_reply",
            Self::Mentions => "invalid_mentions",
            Self::Emoji => "invalid_emoji",
            Self::SeqAhead => "seq_ahead",
            Self::SearchText => "invalid_query",
            Self::SearchLimit => "invalid_limit",
        }
    }
}

/// A request that would break a uniqueness rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConflictError {
    /// An account with this (normalized) email already exists.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// A direct room has its two members; nobody else may join.
    #[error("a direct conversation has exactly two members")]
    DirectRoomFull,
    /// The owner tried to leave, or to drop their own role, without handing
    /// ownership to another member first.
    #[error("the owner must hand ownership to another member first")]
    OwnerMustHandOver,
    /// The message was deleted; it can no longer be edited or reacted to.
    #[error("the message was deleted")]
    MessageDeleted,
    /// A message carries at most 20 distinct emoji.
    #[error("a message carries at most 20 distinct reactions")]
    TooManyReactions,
}

impl ConflictError {
    /// A stable, machine-readable code for this conflict (`snake_case`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmailTaken => "email_taken",
            Self::DirectRoomFull => "direct_room_full",
            Self::OwnerMustHandOver => "owner_must_hand_over",
            Self::MessageDeleted => "message_deleted",
            Self::TooManyReactions => "too_many_reactions",
        }
    }
}

/// A refusal with a reason the client may know and act on (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `REGISTRATION=closed`: nobody may register.
    #[error("registration is closed on this server")]
    RegistrationClosed,
    /// `REGISTRATION=invite` and no invitation, or one that is unknown, used
    /// up or expired (all the same answer).
    #[error("registration needs a valid invitation")]
    InviteInvalid,
    /// The current password given to confirm a change is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// Only instance administrators may do this.
    #[error("only instance administrators may do this")]
    NotAdmin,
    /// A deleted account cannot be enabled or changed again.
    #[error("the account was deleted by its owner")]
    AccountDeleted,
    /// Administrators cannot disable, demote or reset themselves over the
    /// API (they would lock themselves out); the console can.
    #[error("administrators cannot do this to their own account")]
    OwnAccount,
}

impl Refusal {
    /// A stable, machine-readable code (`snake_case`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::RegistrationClosed => "registration_closed",
            Self::InviteInvalid => "invite_invalid",
            Self::WrongPassword => "wrong_password",
            Self::NotAdmin => "not_admin",
            Self::AccountDeleted => "account_deleted",
            Self::OwnAccount => "own_account",
        }
    }
}

/// What was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// A room (or a private room the caller is not in).
    Room,
    /// A user named by id or email.
    User,
    /// A membership: the user is not in the room.
    Member,
    /// A message of the room.
    Message,
    /// A login session of the caller.
    Session,
    /// An invitation.
    Invite,
}

impl Missing {
    /// A stable, machine-readable code (`snake_case`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Room => "room_not_found",
            Self::User => "user_not_found",
            Self::Member => "member_not_found",
            Self::Message => "message_not_found",
            Self::Session => "session_not_found",
            Self::Invite => "invite_not_found",
        }
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Room => "room",
            Self::User => "user",
            Self::Member => "member",
            Self::Message => "message",
            Self::Session => "session",
            Self::Invite => "invitation",
        })
    }
}

impl From<crate::ports::HashError> for DomainError {
    fn from(error: crate::ports::HashError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<crate::token::RandomSourceError> for DomainError {
    fn from(error: crate::token::RandomSourceError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<crate::ports::Throttled> for DomainError {
    fn from(throttled: crate::ports::Throttled) -> Self {
        Self::RateLimited {
            retry_after: throttled.retry_after,
        }
    }
}

impl From<crate::ports::TokenError> for DomainError {
    fn from(error: crate::ports::TokenError) -> Self {
        match error {
            crate::ports::TokenError::Rejected(reason) => {
                tracing::debug!(%reason, "token rejected");
                Self::Unauthorized
            }
            crate::ports::TokenError::Signing(_) => Self::Internal(error.to_string()),
        }
    }
}
