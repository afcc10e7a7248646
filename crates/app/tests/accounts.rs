//! The caller's own account (session list and sign-out per device, password
//! change, deletion), registration policy and invitations, and instance
//! administration (disable, enable, roles), end to end on both stores.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use common::ws::WsClient;
use common::{Backend, TestApp, TestUser, digest};

/// `POST /session/authorize` with a `User-Agent`, returning the token set.
async fn login_from(app: &TestApp, email: &str, password: &str, agent: &str) -> Value {
    let reply = app
        .send_with_headers(
            "POST",
            "/session/authorize",
            &[("User-Agent", agent), ("Content-Type", "application/json")],
            json!({ "email": email, "password": digest(password) }).to_string(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.data().clone()
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("access_token")
}

/// Two logins from two devices: each sees both, the current one marked, with
/// its user agent; signing the other out refuses its token, closes its
/// socket 4001 and leaves this one working.
async fn sessions_are_listed_and_signed_out_per_device(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let user = app.user("devices@example.com").await;
    let phone = login_from(&app, &user.email, "pw", "Phone/1.0").await;
    let laptop = login_from(&app, &user.email, "pw", "Laptop/2.0").await;
    let (mut phone_socket, _) = WsClient::connect_ready(&app, access(&phone)).await;

    let listed = app
        .call("GET", "/users/me/sessions", access(&laptop), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{listed:?}");
    let sessions = listed.data().as_array().expect("a list").clone();
    // The two `app.user` opened (verification, login), the phone and the laptop.
    assert_eq!(sessions.len(), 4, "{sessions:?}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "Laptop/2.0");
    let phone_session = sessions
        .iter()
        .find(|s| s["user_agent"] == "Phone/1.0")
        .expect("the phone's session");
    for field in ["id", "created_at", "last_used_at"] {
        assert!(
            phone_session[field].is_string(),
            "{field}: {phone_session:?}"
        );
    }

    let path = format!(
        "/users/me/sessions/{}",
        phone_session["id"].as_str().unwrap()
    );
    let ended = app.call("DELETE", &path, access(&laptop), None).await;
    assert_eq!(ended.status, StatusCode::OK, "{ended:?}");
    phone_socket.expect_close(4001).await;
    let refused = app.get("/users/me", Some(access(&phone))).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let refresh = app.refresh(phone["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/users/me", Some(access(&laptop))).await.status,
        StatusCode::OK
    );

    // Ended, or someone else's: not found.
    let again = app.call("DELETE", &path, access(&laptop), None).await;
    assert_eq!(again.error_code(), "session_not_found");
    let other = app.user("other-devices@example.com").await;
    let mine = app
        .call("GET", "/users/me/sessions", access(&laptop), None)
        .await;
    let laptop_id = mine.data()[0]["id"].as_str().unwrap().to_owned();
    let foreign = app
        .call(
            "DELETE",
            &format!("/users/me/sessions/{laptop_id}"),
            &other.token,
            None,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{foreign:?}");
    assert_eq!(
        app.get("/users/me", Some(access(&laptop))).await.status,
        StatusCode::OK
    );
}

/// A password change needs the current password (403 `wrong_password`
/// otherwise), ends every other session (their sockets close 4001) and
/// keeps the one that made it; only the new password logs in afterwards.
async fn changing_the_password_ends_the_other_sessions(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let user = app.user("changer@example.com").await;
    let other = common::Tokens::from(&app.authorize(&user.email, "pw").await);
    let (mut other_socket, _) = WsClient::connect_ready(&app, &other.access).await;
    let path = "/users/me/password";

    let wrong = app
        .call(
            "POST",
            path,
            &user.token,
            Some(json!({
                "current_password": digest("not-it"), "new_password": digest("new")
            })),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{wrong:?}");
    assert_eq!(wrong.error_code(), "wrong_password");
    let malformed = app
        .call(
            "POST",
            path,
            &user.token,
            Some(json!({
                "current_password": digest("pw"), "new_password": "plain text"
            })),
        )
        .await;
    assert_eq!(malformed.error_code(), "invalid_password");

    let changed = app
        .call(
            "POST",
            path,
            &user.token,
            Some(json!({
                "current_password": digest("pw"), "new_password": digest("new")
            })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    other_socket.expect_close(4001).await;
    assert_eq!(
        app.get("/users/me", Some(&other.access)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/users/me", Some(&user.token)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.authorize(&user.email, "pw").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.authorize(&user.email, "new").await.status,
        StatusCode::OK
    );
}

/// Deleting one's account: refused without the right password, and while
/// owning a room (409); then the account can never log in again, its
/// sockets close, it leaves its rooms (announced), its messages stay with
/// their seq under "Deleted user", and its email is free again.
async fn deleting_the_account_anonymises_it(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let owner = app.user("room-owner@example.com").await;
    let leaver = app.user("leaver@example.com").await;
    let room = app
        .create_room(&owner, json!({ "name": "stays", "visibility": "public" }))
        .await;
    let room_id = room["id"].as_str().unwrap();
    let joined = app
        .call(
            "PUT",
            &format!("/rooms/{room_id}/members/me"),
            &leaver.token,
            None,
        )
        .await;
    assert_eq!(joined.status, StatusCode::OK);
    let sent = app
        .call(
            "POST",
            &format!("/rooms/{room_id}/messages"),
            &leaver.token,
            Some(json!({ "body": "bye" })),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED);
    let (mut watcher, _) = WsClient::connect_ready(&app, &owner.token).await;
    let (mut leaver_socket, _) = WsClient::connect_ready(&app, &leaver.token).await;

    let wrong = app
        .call(
            "DELETE",
            "/users/me",
            &leaver.token,
            Some(json!({ "password": digest("nope") })),
        )
        .await;
    assert_eq!(wrong.error_code(), "wrong_password");
    let owns = app
        .call(
            "DELETE",
            "/users/me",
            &owner.token,
            Some(json!({ "password": digest("pw") })),
        )
        .await;
    assert_eq!(owns.status, StatusCode::CONFLICT, "{owns:?}");
    assert_eq!(owns.error_code(), "owner_must_hand_over");

    let deleted = app
        .call(
            "DELETE",
            "/users/me",
            &leaver.token,
            Some(json!({ "password": digest("pw") })),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{deleted:?}");
    leaver_socket.expect_close(4001).await;
    let left = watcher.expect_type("member_left").await;
    assert_eq!(left["user_id"], leaver.id.as_str());
    assert_eq!(
        app.get("/users/me", Some(&leaver.token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let login = app.authorize(&leaver.email, "pw").await;
    assert_eq!(
        (login.status, &login.body),
        (StatusCode::UNAUTHORIZED, &json!({}))
    );

    let members = app
        .call(
            "GET",
            &format!("/rooms/{room_id}/members"),
            &owner.token,
            None,
        )
        .await;
    assert!(
        !members.body.to_string().contains(&leaver.id),
        "{members:?}"
    );
    let history = app
        .call(
            "GET",
            &format!("/rooms/{room_id}/messages"),
            &owner.token,
            None,
        )
        .await;
    let message = &history.data()["messages"][0];
    assert_eq!(
        (message["seq"].as_i64(), message["author_id"].as_str()),
        (Some(1), Some(leaver.id.as_str()))
    );
    assert_eq!(message["body"], "bye");

    // Nobody can add the deleted account to a room or write to it.
    let add = app
        .call(
            "POST",
            &format!("/rooms/{room_id}/members"),
            &owner.token,
            Some(json!({ "user_id": leaver.id })),
        )
        .await;
    assert_eq!(add.error_code(), "user_not_found");
    let dm = app
        .call(
            "POST",
            "/dms",
            &owner.token,
            Some(json!({ "user_id": leaver.id })),
        )
        .await;
    assert_eq!(dm.error_code(), "user_not_found");

    // The address is free for a new account.
    app.register(&leaver.email, "fresh").await;
}

/// `REGISTRATION=closed`: nobody registers (403 `registration_closed`).
async fn closed_registration_refuses_everyone(backend: Backend) {
    let Some(app) = backend.spawn(&[("REGISTRATION", "closed")]).await else {
        return;
    };
    let reply = app
        .post(
            "/session/register",
            json!({ "email": "x@example.com", "password": digest("pw") }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    assert_eq!(reply.error_code(), "registration_closed");
}

/// `REGISTRATION=invite`: registering needs an invitation an administrator
/// created; it admits as many registrations as it has uses, unknown, used
/// and revoked ones all answer the same, and it is listed until used up.
async fn invite_only_registration_takes_invitations(backend: Backend) {
    let Some(app) = backend.spawn(&[("REGISTRATION", "invite")]).await else {
        return;
    };
    let admin = admin_of(&app, "inviter@example.com").await;
    let register = |email: &'static str, invite: Option<&str>| {
        let mut body = json!({ "email": email, "password": digest("pw") });
        if let Some(invite) = invite {
            body["invite"] = json!(invite);
        }
        app.post("/session/register", body)
    };
    assert_eq!(
        register("no-invite@example.com", None).await.error_code(),
        "invite_invalid"
    );
    assert_eq!(
        register("bad@example.com", Some("not-a-token"))
            .await
            .error_code(),
        "invite_invalid"
    );

    let created = app
        .call(
            "POST",
            "/admin/invites",
            &admin.token,
            Some(json!({ "uses": 2, "expires_in": 3600 })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let token = created.data()["token"].as_str().unwrap().to_owned();
    assert_eq!(created.data()["uses_left"], 2);
    let listed = app.call("GET", "/admin/invites", &admin.token, None).await;
    assert_eq!(listed.data()[0]["id"], created.data()["id"]);
    assert!(
        listed.data()[0].get("token").is_none(),
        "the token is shown once"
    );

    assert_eq!(
        register("first@example.com", Some(&token)).await.status,
        StatusCode::OK
    );
    // A taken email does not use the invitation up.
    assert_eq!(
        register("first@example.com", Some(&token)).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        register("second@example.com", Some(&token)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        register("third@example.com", Some(&token))
            .await
            .error_code(),
        "invite_invalid"
    );
    let listed = app.call("GET", "/admin/invites", &admin.token, None).await;
    assert_eq!(listed.data(), &json!([]));

    let another = app
        .call("POST", "/admin/invites", &admin.token, Some(json!({})))
        .await;
    let id = another.data()["id"].as_str().unwrap();
    let revoked = app
        .call(
            "DELETE",
            &format!("/admin/invites/{id}"),
            &admin.token,
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let token = another.data()["token"].as_str().unwrap();
    assert_eq!(
        register("fourth@example.com", Some(token))
            .await
            .error_code(),
        "invite_invalid"
    );
    for bad in [
        json!({ "uses": 0 }),
        json!({ "expires_in": 1 }),
        json!({ "uses": "two" }),
    ] {
        let reply = app
            .call("POST", "/admin/invites", &admin.token, Some(bad.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {reply:?}");
    }
}

/// An instance administrator created on the console (password `pw`).
async fn admin_of(app: &TestApp, email: &str) -> TestUser {
    app.console_admin(email).await
}

/// Only administrators reach `/admin/*` (403 `not_admin`); they list and
/// search accounts, disable one (its sockets close 4001, its tokens and
/// logins are refused, 401 `{}` as for a wrong password) and enable it
/// again, change instance roles, and cannot disable themselves.
async fn administrators_disable_and_enable_accounts(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let admin = admin_of(&app, "boss@example.com").await;
    let target = app.user("troll@example.com").await;
    let target_login = common::Tokens::from(&app.authorize(&target.email, "pw").await);
    let (mut socket, _) = WsClient::connect_ready(&app, &target.token).await;

    let denied = app.call("GET", "/admin/users", &target.token, None).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.error_code(), "not_admin");
    let me = app.get("/users/me", Some(&admin.token)).await;
    assert_eq!(me.data()["role"], "admin");

    let found = app
        .call("GET", "/admin/users?q=TROLL", &admin.token, None)
        .await;
    assert_eq!(found.status, StatusCode::OK, "{found:?}");
    let found = found.data().as_array().unwrap().clone();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["email"], "troll@example.com");
    assert_eq!(found[0]["email_verified"], true);
    let nul = app
        .call("GET", "/admin/users?q=%00", &admin.token, None)
        .await;
    assert_eq!(nul.error_code(), "invalid_query");

    let path = format!("/admin/users/{}", target.id);
    let disabled = app
        .call("POST", &format!("{path}/disable"), &admin.token, None)
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{disabled:?}");
    assert!(disabled.data()["disabled_at"].is_string());
    socket.expect_close(4001).await;
    assert_eq!(
        app.get("/users/me", Some(&target.token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = app.refresh(&target_login.refresh).await;
    assert_eq!(
        (refresh.status, &refresh.body),
        (StatusCode::UNAUTHORIZED, &json!({}))
    );
    let login = app.authorize(&target.email, "pw").await;
    assert_eq!(
        (login.status, &login.body),
        (StatusCode::UNAUTHORIZED, &json!({}))
    );

    let enabled = app
        .call("POST", &format!("{path}/enable"), &admin.token, None)
        .await;
    assert_eq!(enabled.data()["disabled_at"], Value::Null);
    let relogin = app.authorize(&target.email, "pw").await;
    assert_eq!(relogin.status, StatusCode::OK);
    let fresh = common::Tokens::from(&relogin).access;

    let promoted = app
        .call(
            "PATCH",
            &path,
            &admin.token,
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(promoted.data()["role"], "admin");
    let listed = app.call("GET", "/admin/users", &fresh, None).await;
    assert_eq!(
        listed.status,
        StatusCode::OK,
        "a new administrator is one at once"
    );
    let bad_role = app
        .call("PATCH", &path, &admin.token, Some(json!({ "role": "god" })))
        .await;
    assert_eq!(bad_role.error_code(), "invalid_role");

    let own = format!("/admin/users/{}/disable", admin.id);
    assert_eq!(
        app.call("POST", &own, &admin.token, None)
            .await
            .error_code(),
        "own_account"
    );
    let missing = format!("/admin/users/{}/disable", uuid_like());
    assert_eq!(
        app.call("POST", &missing, &admin.token, None)
            .await
            .error_code(),
        "user_not_found"
    );
}

fn uuid_like() -> &'static str {
    "00000000-0000-7000-8000-000000000000"
}

/// Recovery answers never tell whether an address is registered: the same
/// 200 for a known, an unknown and an unverified address; a reset token that
/// is unknown gets the seed's `401 {}`; bad input is a 400 as everywhere.
async fn recovery_answers_the_same_for_every_address(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    app.user("known@example.com").await;
    app.register("unverified@example.com", "pw").await;
    for path in ["/session/forgotPassword", "/session/resendVerification"] {
        let answers: Vec<Value> = futures_util::future::join_all(
            [
                "known@example.com",
                "unknown@example.com",
                "unverified@example.com",
            ]
            .map(|email| app.post(path, json!({ "email": email }))),
        )
        .await
        .into_iter()
        .map(|reply| {
            assert_eq!(reply.status, StatusCode::OK, "{path}: {reply:?}");
            reply.body
        })
        .collect();
        assert!(
            answers.windows(2).all(|pair| pair[0] == pair[1]),
            "{path}: {answers:?}"
        );
        let bad = app.post(path, json!({ "email": "not an address" })).await;
        assert_eq!(bad.error_code(), "invalid_email");
    }
    let reset = app
        .post(
            "/session/resetPassword",
            json!({ "token": "f".repeat(64), "password": digest("x") }),
        )
        .await;
    assert_eq!(
        (reset.status, &reset.body),
        (StatusCode::UNAUTHORIZED, &json!({}))
    );
    let malformed = app
        .post(
            "/session/resetPassword",
            json!({ "token": "t", "password": "x" }),
        )
        .await;
    assert_eq!(malformed.error_code(), "invalid_password");
}

/// Recovery mails are limited per address (and per IP): the third request
/// for one address within the hour is 429 with `Retry-After`, known address
/// or not, while another address still gets its answer.
async fn recovery_requests_are_limited_per_address(backend: Backend) {
    let limits = [("RATE_RECOVERY_EMAIL", "2/1h")];
    let Some(app) = backend.spawn(&limits).await else {
        return;
    };
    for path in ["/session/forgotPassword", "/session/resendVerification"] {
        let body = json!({ "email": format!("{}@example.com", &path[9..15]) });
        for _ in 0..2 {
            assert_eq!(app.post(path, body.clone()).await.status, StatusCode::OK);
        }
        let limited = app.post(path, body).await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{path}: {limited:?}"
        );
        assert_eq!(limited.error_code(), "rate_limited");
        assert!(limited.headers.contains_key("retry-after"));
    }
    let other = app
        .post(
            "/session/forgotPassword",
            json!({ "email": "other@example.com" }),
        )
        .await;
    assert_eq!(other.status, StatusCode::OK);
}

/// Confirming a change with the password draws on the account's login
/// budget: a stolen access token cannot guess the password at bcrypt speed.
/// With a budget of 7, the login takes 1 and each wrong try 2: the fourth
/// try is a 429, whatever password it carries.
async fn password_confirmations_share_the_login_budget(backend: Backend) {
    let Some(app) = backend.spawn(&[("RATE_LOGIN_ACCOUNT", "7/1h")]).await else {
        return;
    };
    let user = app.user("guessed@example.com").await;
    let wrong = json!({ "current_password": digest("guess"), "new_password": digest("x") });
    for _ in 0..3 {
        let reply = app
            .call(
                "POST",
                "/users/me/password",
                &user.token,
                Some(wrong.clone()),
            )
            .await;
        assert_eq!(reply.error_code(), "wrong_password");
    }
    let limited = app
        .call("POST", "/users/me/password", &user.token, Some(wrong))
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{limited:?}");
    assert!(limited.headers.contains_key("retry-after"));
    let delete = app
        .call(
            "DELETE",
            "/users/me",
            &user.token,
            Some(json!({ "password": digest("pw") })),
        )
        .await;
    assert_eq!(
        delete.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
}

on_both_stores!(
    password_confirmations_share_the_login_budget,
    recovery_requests_are_limited_per_address,
    recovery_answers_the_same_for_every_address,
    sessions_are_listed_and_signed_out_per_device,
    changing_the_password_ends_the_other_sessions,
    deleting_the_account_anonymises_it,
    closed_registration_refuses_everyone,
    invite_only_registration_takes_invitations,
    administrators_disable_and_enable_accounts,
);
