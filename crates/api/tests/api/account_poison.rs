//! What anyone allowed to publish on `wasl.acct.>` can put there: passed over by the accounts
//! follower, listed and counted, while accounts before and after it work and the API starts.

use async_nats::HeaderMap;
use sha2::{Digest, Sha256};
use wasl_api::auth::accounts::{Accounts, Unapplied};
use wasl_domain::Role;
use wasl_domain::ids::{OrgId, UserId};
use wasl_domain::testing::fresh;
use wasl_testkit::NatsServer;

/// The subject the account store claims a login name on.
fn name_subject(username: &str) -> String {
    format!(
        "wasl.acct.user.{}",
        hex::encode(&Sha256::digest(username.as_bytes())[..16])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_cannot_be_applied_are_passed_over_and_accounts_go_on() {
    let nats = NatsServer::start().expect("a nats-server");
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let accounts = Accounts::open(js.clone(), 1).await.expect("accounts");
    let org: OrgId = fresh();
    let before = accounts
        .create_user(None, org, "test-before", &[Role::Caseworker], "test password 0101")
        .await
        .expect("a user before");

    let nobody: UserId = fresh();
    let poison: Vec<(String, Option<HeaderMap>, Vec<u8>, Unapplied)> = vec![
        (name_subject("test-garbage"), None, b"\xff\xfe\x00garbage".to_vec(), Unapplied::NotJson),
        ("wasl.acct.token.x".to_owned(), Some(HeaderMap::new()), Vec::new(), Unapplied::NotJson),
        (name_subject("test-shape"), None, br#"{"hello":"world"}"#.to_vec(), Unapplied::WrongShape),
        (
            name_subject("test-shape"),
            None,
            format!(r#"{{"at":0,"by":null,"event":{{"type":"user_deleted","user_id":"{nobody}"}}}}"#).into_bytes(),
            Unapplied::WrongShape,
        ),
        (
            name_subject("test-overlord"),
            None,
            format!(
                r#"{{"at":0,"by":null,"event":{{"type":"user_created","user_id":"{}","org":"{org}","username":"test-overlord","roles":["overlord"],"password_hash":"x"}}}}"#,
                UserId::to_string(&fresh())
            )
            .into_bytes(),
            Unapplied::InvalidValue,
        ),
        (
            name_subject("test-nobody"),
            None,
            format!(r#"{{"at":0,"by":null,"event":{{"type":"roles_changed","user_id":"{nobody}","roles":["admin"]}}}}"#)
                .into_bytes(),
            Unapplied::UnknownAccount,
        ),
    ];
    for (subject, headers, payload, _) in &poison {
        let ack = match headers {
            Some(headers) => {
                js.publish_with_headers(subject.clone(), headers.clone(), payload.clone().into())
                    .await
            }
            None => js.publish(subject.clone(), payload.clone().into()).await,
        };
        ack.expect("publish").await.expect("stored");
    }

    // The running follower went past them: a change after them is applied (this waits for it).
    let after = accounts
        .create_user(None, org, "test-after", &[Role::Supervisor], "test password 0102")
        .await
        .expect("a user after");
    let kinds = |accounts: &Accounts| accounts.skipped().iter().map(|s| s.kind).collect::<Vec<_>>();
    let expected: Vec<Unapplied> = poison.iter().map(|(.., kind)| *kind).collect();
    assert_eq!(kinds(&accounts), expected);

    // A new instance starts (it waits for its follower to reach the end) and sees the same.
    let restarted = Accounts::open(js.clone(), 1)
        .await
        .expect("accounts open past the poison");
    assert_eq!(restarted.user(before.id), Some(before.clone()));
    assert_eq!(restarted.user(after.id), Some(after.clone()));
    assert_eq!(kinds(&restarted), expected);
    assert!(
        restarted.user_by_name("test-overlord").is_none(),
        "nothing half-applied"
    );
    assert_eq!(restarted.users_of(org).len(), 2);

    // A name whose subject holds only garbage can still be claimed, once.
    let claimed = restarted
        .create_user(None, org, "test-garbage", &[Role::Caseworker], "test password 0103")
        .await
        .expect("the name is free");
    assert_eq!(accounts_user_by_name(&accounts, "test-garbage").await, Some(claimed.id));
    assert!(matches!(
        accounts
            .create_user(None, org, "test-garbage", &[Role::Caseworker], "test password 0104")
            .await,
        Err(wasl_api::auth::accounts::AccountError::UsernameTaken)
    ));
    // A name that an account holds stays taken.
    assert!(matches!(
        restarted
            .create_user(None, org, "test-before", &[Role::Caseworker], "test password 0105")
            .await,
        Err(wasl_api::auth::accounts::AccountError::UsernameTaken)
    ));
}

/// The id of `username` once `accounts` has followed the stream that far.
async fn accounts_user_by_name(accounts: &Accounts, username: &str) -> Option<UserId> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(user) = accounts.user_by_name(username) {
            return Some(user.id);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
