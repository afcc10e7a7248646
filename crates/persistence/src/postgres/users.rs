//! [`UserRepository`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::result::Error;
use diesel::sql_types::{Bool, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use p_chat_domain::ports::{Anonymisation, Registered, StoreError, UserQuery, UserRepository};
use p_chat_domain::room::Role;
use p_chat_domain::token::TokenHash;
use p_chat_domain::user::{
    Anonymised, DisplayName, Email, InstanceRole, PasswordHash, User, UserId,
};
use p_chat_domain::verification::EmailVerification;
use uuid::Uuid;

use super::events::{events, log, unless_rolled_back};
use super::models::{EventRow, UserRow, VerificationRow};
use super::pool::PgStore;
use super::schema::{email_verifications, invites, password_resets, room_members, rooms, users};
use super::sql::{coalesce, contains_pattern};

/// Shows an anonymised account under its new name (`$2`) in its earlier
/// membership events (those of `$1` with a member in their payload:
/// `member_joined` and `member_updated`).
const RENAME_IN_EVENTS: &str = "\
UPDATE room_events SET payload = jsonb_set(payload, '{member,display_name}', to_jsonb($2::text))
 WHERE user_id = $1 AND payload ? 'member'";

/// Accounts in the `users` table. Email uniqueness is the table's `UNIQUE`
/// constraint, so racing inserts cannot both succeed.
#[derive(Clone)]
pub struct PgUsers(PgStore);

impl PgUsers {
    /// The adapter over `store`.
    pub fn new(store: PgStore) -> Self {
        Self(store)
    }
}

/// `users.email` compared by code point, whatever the database's collation:
/// the order of [`UserRepository::list`] (and the in-memory store's). Matches
/// the `users_email_byte_order_idx` expression.
fn email_in_byte_order() -> diesel::expression::SqlLiteral<Text> {
    sql::<Text>(r#"users.email COLLATE "C""#)
}

#[async_trait]
impl UserRepository for PgUsers {
    async fn insert(&self, user: &User) -> Result<(), StoreError> {
        let mut connection = self.0.connection().await?;
        let insert = diesel::insert_into(users::table)
            .values(UserRow::from(user))
            .execute(&mut connection);
        self.0.bounded(insert).await.map(|_| ())
    }

    /// One transaction: lock the invitation (`FOR UPDATE`: racing
    /// redemptions of one invitation queue here) and check it admits one
    /// more; delete a stale unverified registration of the email; insert the
    /// account `ON CONFLICT DO NOTHING` (which waits for a racing insert of
    /// the same email, and then yields to it); insert the verification; use
    /// up one use of the invitation. Any failure rolls all of it back.
    async fn register(
        &self,
        user: &User,
        verification: &EmailVerification,
        invite: Option<TokenHash>,
        stale_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Registered, StoreError> {
        let row = UserRow::from(user);
        let pending = VerificationRow::from(verification);
        let email = user.email.as_str().to_owned();
        let invite = invite.map(|hash| hash.as_bytes().to_vec());
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, diesel::result::Error, _>(async |conn| {
            let invite_id = match &invite {
                None => None,
                Some(hash) => {
                    let admitted = invites::table
                        .filter(invites::token_hash.eq(hash))
                        .filter(invites::uses_left.gt(0))
                        .filter(invites::expires_at.gt(now))
                        .select(invites::id)
                        .for_update()
                        .first::<uuid::Uuid>(conn)
                        .await
                        .optional()?;
                    match admitted {
                        Some(id) => Some(id),
                        None => return Ok(Registered::InviteRefused),
                    }
                }
            };
            diesel::delete(
                users::table
                    .filter(users::email.eq(&email))
                    .filter(users::email_verified_at.is_null())
                    .filter(users::created_at.le(stale_before)),
            )
            .execute(conn)
            .await?;
            let inserted = diesel::insert_into(users::table)
                .values(&row)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if inserted == 0 {
                return Ok(Registered::EmailTaken);
            }
            diesel::insert_into(email_verifications::table)
                .values(&pending)
                .execute(conn)
                .await?;
            if let Some(id) = invite_id {
                diesel::update(invites::table.find(id))
                    .set(invites::uses_left.eq(invites::uses_left - 1))
                    .execute(conn)
                    .await?;
            }
            Ok(Registered::Created)
        });
        self.0.bounded(transaction).await
    }

    async fn by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = users::table
            .find(id.as_uuid())
            .select(UserRow::as_select())
            .first(&mut connection);
        let row = self.0.bounded(async { query.await.optional() }).await?;
        row.map(User::try_from).transpose()
    }

    async fn by_ids(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(UserId::as_uuid).collect();
        let mut connection = self.0.connection().await?;
        let query = users::table
            .filter(users::id.eq_any(ids))
            .select(UserRow::as_select())
            .load(&mut connection);
        let rows = self.0.bounded(query).await?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = users::table
            .filter(users::email.eq(email.as_str()))
            .select(UserRow::as_select())
            .first(&mut connection);
        let row = self.0.bounded(async { query.await.optional() }).await?;
        row.map(User::try_from).transpose()
    }

    /// Keyset paging on `users_email_byte_order_idx`: by `email COLLATE
    /// "C"` (code point order, the in-memory store's, whatever the
    /// database's collation); the `contains` filter is a scan of that index
    /// (the administrators' list, not a hot path).
    async fn list(&self, query: &UserQuery) -> Result<Vec<User>, StoreError> {
        let mut select = users::table
            .select(UserRow::as_select())
            .order(email_in_byte_order())
            .limit(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .into_boxed();
        if let Some(after) = &query.after {
            select = select.filter(
                sql::<Bool>(r#"users.email COLLATE "C" > "#)
                    .bind::<Text, _>(after.as_str().to_owned()),
            );
        }
        if let Some(needle) = &query.contains {
            let pattern = contains_pattern(needle.as_str());
            select = select.filter(
                users::email
                    .ilike(pattern.clone())
                    .or(users::display_name.ilike(pattern)),
            );
        }
        let mut connection = self.0.connection().await?;
        let rows = self.0.bounded(select.load(&mut connection)).await?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn mark_verified(&self, id: UserId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut connection = self.0.connection().await?;
        let update = diesel::update(users::table.find(id.as_uuid()))
            .set(users::email_verified_at.eq(coalesce(users::email_verified_at, at)))
            .execute(&mut connection);
        Ok(self.0.bounded(update).await? == 1)
    }

    async fn set_display_name(
        &self,
        id: UserId,
        name: &DisplayName,
    ) -> Result<Option<User>, StoreError> {
        let mut connection = self.0.connection().await?;
        let update = diesel::update(users::table.find(id.as_uuid()))
            .set(users::display_name.eq(name.as_str()))
            .returning(UserRow::as_returning())
            .get_result(&mut connection);
        let row = self.0.bounded(async { update.await.optional() }).await?;
        row.map(User::try_from).transpose()
    }

    /// One transaction: the new hash, then the account's pending resets gone.
    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
    ) -> Result<Option<User>, StoreError> {
        let uuid = id.as_uuid();
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, diesel::result::Error, _>(async |conn| {
            let row = diesel::update(users::table.find(uuid))
                .set(users::password_hash.eq(hash.expose()))
                .returning(UserRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            diesel::delete(password_resets::table.filter(password_resets::user_id.eq(uuid)))
                .execute(conn)
                .await?;
            Ok(row)
        });
        let row = self.0.bounded(transaction).await?;
        row.map(User::try_from).transpose()
    }

    async fn set_role(&self, id: UserId, role: InstanceRole) -> Result<Option<User>, StoreError> {
        let mut connection = self.0.connection().await?;
        let update = diesel::update(users::table.find(id.as_uuid()))
            .set(users::role.eq(role.as_str()))
            .returning(UserRow::as_returning())
            .get_result(&mut connection);
        let row = self.0.bounded(async { update.await.optional() }).await?;
        row.map(User::try_from).transpose()
    }

    /// One statement either way: disabling keeps a first time (`COALESCE`),
    /// enabling leaves a deleted account as it is (the `CHECK` that a
    /// deleted account is disabled would refuse it anyway).
    async fn set_disabled(
        &self,
        id: UserId,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<User>, StoreError> {
        let mut connection = self.0.connection().await?;
        let target = users::table.find(id.as_uuid());
        let row = match at {
            Some(at) => {
                let update = diesel::update(target)
                    .set(users::disabled_at.eq(coalesce(users::disabled_at, at)))
                    .returning(UserRow::as_returning())
                    .get_result(&mut connection);
                self.0.bounded(async { update.await.optional() }).await?
            }
            None => {
                let update = diesel::update(target.filter(users::deleted_at.is_null()))
                    .set(users::disabled_at.eq(None::<DateTime<Utc>>))
                    .returning(UserRow::as_returning())
                    .get_result(&mut connection);
                match self.0.bounded(async { update.await.optional() }).await? {
                    Some(row) => Some(row),
                    None => {
                        let query = target.select(UserRow::as_select()).first(&mut connection);
                        self.0.bounded(async { query.await.optional() }).await?
                    }
                }
            }
        };
        row.map(User::try_from).transpose()
    }

    /// One transaction (tried again, up to [`ANONYMISE_ATTEMPTS`] times in
    /// all, if the account joined a room meanwhile):
    ///
    /// 1. read the account's rooms, and lock them in id order (`FOR NO KEY
    ///    UPDATE`: the lock every change of a room takes first, so their
    ///    memberships hold still, and two deletions sharing rooms cannot
    ///    deadlock), then lock the account row (after the rooms: a send of
    ///    the account locks its room before its foreign key reaches the
    ///    account's row);
    /// 2. read its memberships again: one in a room not locked (a join
    ///    that committed in between) rolls back for another attempt; one
    ///    that is an owner's refuses the deletion;
    /// 3. delete the memberships, take each room's next position and log
    ///    `member_left` there, rewrite the name in the account's membership
    ///    events (served by `room_events_user_id_idx`);
    /// 4. delete verifications and resets, overwrite the account.
    async fn anonymise(
        &self,
        id: UserId,
        anonymised: &Anonymised,
        unusable: &PasswordHash,
    ) -> Result<Anonymisation, StoreError> {
        for _ in 0..ANONYMISE_ATTEMPTS {
            if let Some(outcome) = self.try_anonymise(id, anonymised, unusable).await? {
                return Ok(outcome);
            }
        }
        Err(StoreError::Unavailable(format!(
            "account {id} kept joining rooms while it was being deleted"
        )))
    }

    async fn record_last_seen(&self, id: UserId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut connection = self.0.connection().await?;
        let update = diesel::update(users::table.find(id.as_uuid()))
            .set(users::last_seen_at.eq(at))
            .execute(&mut connection);
        Ok(self.0.bounded(update).await? == 1)
    }

    async fn last_seen(&self, id: UserId) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = users::table
            .find(id.as_uuid())
            .select(users::last_seen_at)
            .first::<Option<DateTime<Utc>>>(&mut connection);
        let seen = self.0.bounded(async { query.await.optional() }).await?;
        Ok(seen.flatten())
    }
}

/// How often [`UserRepository::anonymise`] tries, when the account joins a
/// room while its rooms are being locked, before it gives up.
const ANONYMISE_ATTEMPTS: usize = 3;

/// What one attempt of [`UserRepository::anonymise`] found.
enum Attempt {
    /// No such account.
    Missing,
    /// The account owns a room.
    OwnsRooms,
    /// Done: the account as stored now, and the `member_left` events of
    /// the rooms it left, by room id.
    Done(UserRow, Vec<EventRow>),
}

impl PgUsers {
    /// One attempt of [`UserRepository::anonymise`]; `None` if the account
    /// joined a room the attempt had not locked (nothing changed).
    async fn try_anonymise(
        &self,
        id: UserId,
        anonymised: &Anonymised,
        unusable: &PasswordHash,
    ) -> Result<Option<Anonymisation>, StoreError> {
        let uuid = id.as_uuid();
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, Error, _>(async |conn| {
            let rooms: Vec<Uuid> = room_members::table
                .filter(room_members::user_id.eq(uuid))
                .select(room_members::room_id)
                .load(conn)
                .await?;
            let locked: Vec<Uuid> = rooms::table
                .filter(rooms::id.eq_any(&rooms))
                .order_by(rooms::id)
                .select(rooms::id)
                .for_no_key_update()
                .load(conn)
                .await?;
            let exists = users::table
                .find(uuid)
                .select(users::id)
                .for_update()
                .first::<Uuid>(conn)
                .await
                .optional()?;
            if exists.is_none() {
                return Ok(Attempt::Missing);
            }
            let memberships: Vec<(Uuid, String)> = room_members::table
                .filter(room_members::user_id.eq(uuid))
                .select((room_members::room_id, room_members::role))
                .load(conn)
                .await?;
            if memberships
                .iter()
                .any(|(room, _)| locked.binary_search(room).is_err())
            {
                return Err(Error::RollbackTransaction);
            }
            if memberships
                .iter()
                .any(|(_, role)| role == Role::Owner.as_str())
            {
                return Ok(Attempt::OwnsRooms);
            }
            let left: Vec<Uuid> =
                diesel::delete(room_members::table.filter(room_members::user_id.eq(uuid)))
                    .returning(room_members::room_id)
                    .get_results(conn)
                    .await?;
            let mut positions: Vec<(Uuid, i64)> = diesel::update(rooms::table)
                .filter(rooms::id.eq_any(&left))
                .set(rooms::last_pos.eq(rooms::last_pos + 1))
                .returning((rooms::id, rooms::last_pos))
                .get_results(conn)
                .await?;
            positions.sort_unstable();
            let events: Vec<EventRow> = positions
                .into_iter()
                .map(|(room, pos)| EventRow::member_left(room, uuid, pos, anonymised.deleted_at))
                .collect();
            log(conn, &events).await?;
            diesel::sql_query(RENAME_IN_EVENTS)
                .bind::<SqlUuid, _>(uuid)
                .bind::<Text, _>(anonymised.display_name.as_str())
                .execute(conn)
                .await?;
            diesel::delete(
                email_verifications::table.filter(email_verifications::user_id.eq(uuid)),
            )
            .execute(conn)
            .await?;
            diesel::delete(password_resets::table.filter(password_resets::user_id.eq(uuid)))
                .execute(conn)
                .await?;
            let row = diesel::update(users::table.find(uuid))
                .set((
                    users::email.eq(anonymised.email.as_str()),
                    users::display_name.eq(anonymised.display_name.as_str()),
                    users::password_hash.eq(unusable.expose()),
                    users::disabled_at.eq(coalesce(users::disabled_at, anonymised.deleted_at)),
                    users::deleted_at.eq(coalesce(users::deleted_at, anonymised.deleted_at)),
                ))
                .returning(UserRow::as_returning())
                .get_result(conn)
                .await?;
            Ok(Attempt::Done(row, events))
        });
        let attempt = self.0.bounded(unless_rolled_back(transaction)).await?;
        attempt
            .map(|attempt| {
                Ok(match attempt {
                    Attempt::Missing => Anonymisation::Missing,
                    Attempt::OwnsRooms => Anonymisation::OwnsRooms,
                    Attempt::Done(row, left) => {
                        Anonymisation::Done(User::try_from(row)?, events(left)?)
                    }
                })
            })
            .transpose()
    }
}
