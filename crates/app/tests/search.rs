//! Message search (issue 13), black-box on both stores, as docs/api.md
//! ("Search", the limits) describes it: every word must occur, only the
//! rooms the caller is a member of (never another's private room, never a
//! public room not joined), never a deleted message, the `room_id` filter,
//! `limit`, `before`, the 400s, the result shape and its snippet, and no
//! 5xx for odd queries.
//!
//! Only what holds on both stores is asserted: whole words (PostgreSQL
//! matches words, memory substrings) and, for the order, equal matches
//! (then newest first on both).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod chat_features;
mod common;

use actix_web::http::StatusCode;
use chat_features::{
    NO_BODY, assert_no_server_error, delete_message, encode, expect, expect_error, found, id_of,
    ids_of_results, leave, room, say, search,
};
use chrono::{DateTime, Utc};
use common::{Backend, TestApp, TestUser};
use serde_json::{Value, json};
use uuid::Uuid;

/// The default and the largest number of results (docs/api.md).
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 50;
/// The longest search text, in characters.
const MAX_QUERY_CHARS: usize = 200;
/// The longest snippet, in characters, without its "…" marks.
const MAX_SNIPPET_CHARS: usize = 200;

async fn spawn(backend: Backend) -> Option<TestApp> {
    let app = backend.spawn(&[]).await;
    if app.is_none() {
        eprintln!("skipped: no PostgreSQL here");
    }
    app
}

/// `q=` and the rest of a query, encoded.
fn q(text: &str) -> String {
    format!("q={}", encode(text))
}

/// The snippet of a result as `(text, match)` pairs.
fn segments(result: &Value) -> Vec<(String, bool)> {
    result["snippet"]
        .as_array()
        .unwrap_or_else(|| panic!("no snippet array in {result}"))
        .iter()
        .map(|segment| {
            (
                segment["text"].as_str().expect("segment text").to_owned(),
                segment["match"].as_bool().expect("segment match"),
            )
        })
        .collect()
}

/// The `created_at` of a message object.
fn created_at(message: &Value) -> DateTime<Utc> {
    message["created_at"]
        .as_str()
        .unwrap_or_else(|| panic!("no created_at in {message}"))
        .parse()
        .expect("RFC 3339")
}

/// Joins the public `room` as `user`.
async fn join(app: &TestApp, user: &TestUser, room: &str) {
    let reply = app
        .call(
            "PUT",
            &format!("/rooms/{room}/members/me"),
            &user.token,
            NO_BODY,
        )
        .await;
    assert!(reply.status.is_success(), "{reply:?}");
}

async fn finds_by_word_in_the_callers_rooms_only(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let cy = app.user("cy@example.com").await;
    let team = room(&app, &ada, "team", "private", &[&bob]).await;
    let mine = room(&app, &ada, "notes", "private", &[]).await;
    let secret = room(&app, &cy, "secret", "private", &[]).await;
    let plaza = room(&app, &cy, "plaza", "public", &[]).await;
    let in_team = say(&app, &bob, &team, "a banana for the team").await;
    let in_mine = say(&app, &ada, &mine, "Banana bread recipe").await;
    say(&app, &cy, &secret, "my secret banana").await;
    let in_plaza = say(&app, &cy, &plaza, "bananas? banana!").await;
    say(&app, &ada, &team, "nothing to see here").await;

    let results = found(&app, &ada, &q("banana")).await;
    let mut ids = ids_of_results(&results);
    ids.sort();
    let mut expected = vec![id_of(&in_team), id_of(&in_mine)];
    expected.sort();
    assert_eq!(ids, expected, "{results:?}");
    for result in &results {
        let message = &result["message"];
        for key in [
            "id",
            "room_id",
            "seq",
            "author_id",
            "body",
            "created_at",
            "deleted",
            "reply_to",
            "mentions",
            "reactions",
        ] {
            assert!(message.get(key).is_some(), "no {key} in {message}");
        }
        assert_eq!(result["room"]["id"], message["room_id"], "{result}");
        let name = if message["room_id"] == team.as_str() {
            "team"
        } else {
            "notes"
        };
        assert_eq!(
            result["room"],
            json!({ "id": message["room_id"], "name": name })
        );
    }
    // Any case; every word must occur.
    assert_eq!(
        ids_of_results(&found(&app, &ada, &q("BANANA recipe")).await),
        vec![id_of(&in_mine)]
    );
    assert!(found(&app, &ada, &q("banana cake")).await.is_empty());
    // Cy finds his own rooms' messages, Bob only the team's.
    assert_eq!(
        ids_of_results(&found(&app, &bob, &q("banana")).await),
        vec![id_of(&in_team)]
    );
    assert_eq!(found(&app, &cy, &q("banana")).await.len(), 2);

    // Joining the public room makes it searchable; leaving the team does
    // the opposite.
    join(&app, &ada, &plaza).await;
    leave(&app, &bob, &team).await;
    let results = found(&app, &ada, &q("banana")).await;
    assert!(
        ids_of_results(&results).contains(&id_of(&in_plaza)),
        "{results:?}"
    );
    assert!(found(&app, &bob, &q("banana")).await.is_empty());
}

async fn deleted_messages_are_never_found_and_edits_are(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "edits", "private", &[]).await;
    let gone = say(&app, &ada, &room, "an embarrassing typo").await;
    let kept = say(&app, &ada, &room, "an honest typo").await;
    delete_message(&app, &ada, &room, &id_of(&gone)).await;
    assert_eq!(
        ids_of_results(&found(&app, &ada, &q("typo")).await),
        vec![id_of(&kept)]
    );
    assert!(found(&app, &ada, &q("embarrassing")).await.is_empty());
    let with_room = format!("{}&room_id={room}", q("embarrassing"));
    assert!(found(&app, &ada, &with_room).await.is_empty());

    let edited = app
        .call(
            "PATCH",
            &format!("/rooms/{room}/messages/{}", id_of(&kept)),
            &ada.token,
            Some(json!({ "body": "a corrected sentence" })),
        )
        .await;
    expect(edited, StatusCode::OK);
    assert!(found(&app, &ada, &q("honest")).await.is_empty());
    let results = found(&app, &ada, &q("corrected")).await;
    assert_eq!(ids_of_results(&results), vec![id_of(&kept)]);
    assert_eq!(results[0]["message"]["body"], "a corrected sentence");
}

async fn room_id_limits_the_search_to_a_room_the_caller_can_read(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let cy = app.user("cy@example.com").await;
    let first = room(&app, &ada, "first", "private", &[]).await;
    let second = room(&app, &ada, "second", "private", &[]).await;
    let secret = room(&app, &cy, "secret", "private", &[]).await;
    let plaza = room(&app, &cy, "plaza", "public", &[]).await;
    let here = say(&app, &ada, &first, "kiwi here").await;
    say(&app, &ada, &second, "kiwi there").await;
    say(&app, &cy, &secret, "kiwi hidden").await;
    say(&app, &cy, &plaza, "kiwi public").await;

    let only_first = format!("{}&room_id={first}", q("kiwi"));
    assert_eq!(
        ids_of_results(&found(&app, &ada, &only_first).await),
        vec![id_of(&here)]
    );
    assert_eq!(found(&app, &ada, &q("kiwi")).await.len(), 2);
    for hidden in [secret.clone(), Uuid::new_v4().to_string()] {
        let reply = search(&app, &ada, &format!("{}&room_id={hidden}", q("kiwi"))).await;
        expect_error(&reply, StatusCode::NOT_FOUND, "room_not_found");
    }
    let reply = search(&app, &ada, &format!("{}&room_id={plaza}", q("kiwi"))).await;
    expect_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    join(&app, &ada, &plaza).await;
    let reply = search(&app, &ada, &format!("{}&room_id={plaza}", q("kiwi"))).await;
    let results = expect(reply, StatusCode::OK).data()["results"].clone();
    assert_eq!(results.as_array().unwrap().len(), 1, "{results}");
}

async fn limit_and_before_page_back_newest_first(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "many", "private", &[]).await;
    let mut sent = Vec::new();
    for index in 0..=DEFAULT_LIMIT + 4 {
        sent.push(say(&app, &ada, &room, &format!("mango number {index}")).await);
    }
    let newest_first: Vec<String> = sent.iter().rev().map(id_of).collect();
    assert_eq!(
        ids_of_results(&found(&app, &ada, &q("mango")).await),
        newest_first[..DEFAULT_LIMIT]
    );
    assert_eq!(
        ids_of_results(&found(&app, &ada, &format!("{}&limit=3", q("mango"))).await),
        newest_first[..3]
    );
    assert_eq!(
        ids_of_results(&found(&app, &ada, &format!("{}&limit={MAX_LIMIT}", q("mango"))).await),
        newest_first
    );
    assert_eq!(
        found(&app, &ada, &format!("{}&limit=1", q("mango")))
            .await
            .len(),
        1
    );
    // `before` a message's time: only older messages, newest first.
    let pivot = &sent[5];
    let before = pivot["created_at"].as_str().unwrap();
    let query = format!("{}&before={}&limit={MAX_LIMIT}", q("mango"), encode(before));
    let older: Vec<String> = sent
        .iter()
        .filter(|message| created_at(message) < created_at(pivot))
        .rev()
        .map(id_of)
        .collect();
    assert_eq!(older, newest_first[newest_first.len() - 5..]);
    assert_eq!(ids_of_results(&found(&app, &ada, &query).await), older);
    // Paging back from the last result of a page.
    let page = found(&app, &ada, &format!("{}&limit=10", q("mango"))).await;
    let last_message = &page.last().unwrap()["message"];
    let last = last_message["created_at"].as_str().unwrap().to_owned();
    let next = found(
        &app,
        &ada,
        &format!("{}&limit=10&before={}", q("mango"), encode(&last)),
    )
    .await;
    for result in &next {
        assert!(
            created_at(&result["message"]) < created_at(last_message),
            "{result}"
        );
        assert!(!ids_of_results(&page).contains(&id_of(&result["message"])));
    }
    assert_eq!(ids_of_results(&next), newest_first[10..20]);
    // A time before everything finds nothing; an offset is understood.
    let query = format!(
        "{}&before={}",
        q("mango"),
        encode("2000-01-01T00:00:00+02:00")
    );
    assert!(found(&app, &ada, &query).await.is_empty());
    let query = format!("{}&before={}", q("mango"), encode("2999-01-01T00:00:00Z"));
    assert_eq!(found(&app, &ada, &query).await.len(), DEFAULT_LIMIT);
}

async fn bad_queries_are_400_with_their_codes(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "validation", "private", &[]).await;
    say(&app, &ada, &room, "papaya").await;
    let long = "a".repeat(MAX_QUERY_CHARS + 1);
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "invalid_query"),
        ("q=".to_owned(), "invalid_query"),
        (q("   "), "invalid_query"),
        (q(&long), "invalid_query"),
        (q(&"é".repeat(MAX_QUERY_CHARS + 1)), "invalid_query"),
        ("q=pa%00paya".to_owned(), "invalid_query"),
        ("q=pa%1Bpaya".to_owned(), "invalid_query"),
        ("q=pa%0Apaya".to_owned(), "invalid_query"),
        ("q=papaya&limit=0".to_owned(), "invalid_limit"),
        (format!("q=papaya&limit={}", MAX_LIMIT + 1), "invalid_limit"),
        ("q=papaya&limit=-1".to_owned(), "invalid_limit"),
        (
            "q=papaya&limit=99999999999999999999".to_owned(),
            "invalid_query",
        ),
        ("q=papaya&limit=ten".to_owned(), "invalid_query"),
        ("q=papaya&limit=1.5".to_owned(), "invalid_query"),
        ("q=papaya&room_id=x".to_owned(), "invalid_query"),
        ("q=papaya&room_id=".to_owned(), "invalid_query"),
        ("q=papaya&before=yesterday".to_owned(), "invalid_query"),
        (
            "q=papaya&before=2026-13-01T00:00:00Z".to_owned(),
            "invalid_query",
        ),
        ("q=papaya&before=".to_owned(), "invalid_query"),
    ];
    for (query, code) in &cases {
        let reply = search(&app, &ada, query).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "?{query}: {reply:?}");
        assert_eq!(reply.error_code(), *code, "?{query}: {reply:?}");
    }
    // The edges are fine: 200 characters after trimming, limits 1 and 50.
    let edge = format!("  {}  ", "p".repeat(MAX_QUERY_CHARS));
    expect(search(&app, &ada, &q(&edge)).await, StatusCode::OK);
    let unauthenticated = app.get("/search/messages?q=papaya", None).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}

async fn snippets_mark_the_searched_words(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "snippets", "private", &[]).await;
    say(&app, &ada, &room, "the quick brown fox").await;
    let results = found(&app, &ada, &q("brown")).await;
    assert_eq!(
        segments(&results[0]),
        vec![
            ("the quick ".to_owned(), false),
            ("brown".to_owned(), true),
            (" fox".to_owned(), false),
        ]
    );
    // Both words are marked, in any case, as written in the body.
    say(&app, &ada, &room, "Lemon and lime, then LEMON again").await;
    let results = found(&app, &ada, &q("lemon lime")).await;
    assert_eq!(results.len(), 1, "{results:?}");
    let marked: Vec<String> = segments(&results[0])
        .into_iter()
        .filter(|(_, matched)| *matched)
        .map(|(text, _)| text)
        .collect();
    assert_eq!(marked, ["Lemon", "lime", "LEMON"]);
    let whole: String = segments(&results[0])
        .into_iter()
        .map(|(text, _)| text)
        .collect();
    assert_eq!(whole, "Lemon and lime, then LEMON again");

    // A long body: a window around the first match, cut with "…".
    let body = format!(
        "{} durian {}",
        "filler ".repeat(60).trim_end(),
        "padding ".repeat(60).trim_end()
    );
    say(&app, &ada, &room, &body).await;
    let results = found(&app, &ada, &q("durian")).await;
    let parts = segments(&results[0]);
    let shown: String = parts.iter().map(|(text, _)| text.as_str()).collect();
    assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown:?}");
    let inner = shown.trim_matches('…');
    assert!(inner.chars().count() <= MAX_SNIPPET_CHARS, "{shown:?}");
    assert!(body.contains(inner), "{shown:?}");
    assert_eq!(
        parts
            .iter()
            .filter(|(_, matched)| *matched)
            .collect::<Vec<_>>(),
        vec![&("durian".to_owned(), true)]
    );

    // Markup is text.
    say(&app, &ada, &room, "<b>guava</b> & <script>x</script>").await;
    let results = found(&app, &ada, &q("guava")).await;
    let shown: String = segments(&results[0])
        .into_iter()
        .map(|(text, _)| text)
        .collect();
    assert_eq!(shown, "<b>guava</b> & <script>x</script>");
}

async fn odd_search_queries_are_never_a_server_error(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "fuzz", "private", &[]).await;
    say(&app, &ada, &room, "a plain message with 100% of the words").await;
    let texts = [
        "%",
        "_",
        "%%",
        "100%",
        "'",
        "\"",
        "\\",
        "a & b | c",
        "!",
        "(",
        ":*",
        "a:*",
        "!!a",
        "<->",
        "a <-> b",
        "' OR 1=1 --",
        "*",
        "?",
        "\u{FFFD}",
        "👍",
        "\u{200D}",
        "ǅ",
        "ß",
        "İ",
        "a\u{0301}",
        "x".repeat(MAX_QUERY_CHARS).as_str(),
    ]
    .map(str::to_owned);
    let mut requests: Vec<(&str, String, Option<String>)> = texts
        .iter()
        .map(|text| ("GET", format!("/search/messages?{}", q(text)), None))
        .collect();
    for odd in chat_features::odd_ids() {
        requests.push((
            "GET",
            format!("/search/messages?q=plain&room_id={odd}"),
            None,
        ));
        requests.push((
            "GET",
            format!("/search/messages?q=plain&before={odd}"),
            None,
        ));
        requests.push(("GET", format!("/search/messages?q=plain&limit={odd}"), None));
    }
    for raw in ["q", "q=%FF", "q=%", "q=a&q=b", "q=plain&before=%2B", "&&&"] {
        requests.push(("GET", format!("/search/messages?{raw}"), None));
    }
    requests.push(("POST", "/search/messages?q=plain".to_owned(), None));
    let statuses = assert_no_server_error(&app, &ada, &requests).await;
    let texts_answered = &statuses[..texts.len()];
    assert!(
        texts_answered.iter().all(StatusCode::is_success),
        "a valid search text is a 200 even when it is punctuation: {statuses:?}"
    );
    // The 100% message is found by its odd word on both stores.
    let results = found(&app, &ada, &q("plain")).await;
    assert_eq!(results.len(), 1, "{results:?}");
}

on_both_stores!(
    finds_by_word_in_the_callers_rooms_only,
    deleted_messages_are_never_found_and_edits_are,
    room_id_limits_the_search_to_a_room_the_caller_can_read,
    limit_and_before_page_back_newest_first,
    bad_queries_are_400_with_their_codes,
    snippets_mark_the_searched_words,
    odd_search_queries_are_never_a_server_error,
);
