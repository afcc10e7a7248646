// @generated automatically by Diesel CLI.

diesel::table! {
    email_verifications (token_hash) {
        token_hash -> Bytea,
        user_id -> Uuid,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    login_sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        refresh_token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        display_name -> Text,
        password_hash -> Text,
        email_verified_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(email_verifications -> users (user_id));
diesel::joinable!(login_sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(email_verifications, login_sessions, users,);
