//! The people a referral's events concern get exactly one mail each, nobody else does, nothing
//! personal is in any of it, and neither a restart, a replay, a refusing server nor an
//! unreadable message changes that.

use crate::support::*;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use wasl_domain::Role;
use wasl_domain::catalogue::{Priority, ServiceCategory};
use wasl_domain::ids::{OrgId, UserId};
use wasl_domain::referral::ReferralCommand;
use wasl_domain::testing::actor;
use wasl_testkit::db::TestDb;
use wasl_testkit::on_both;
use wasl_testkit::smtp::SmtpSink;

async fn the_people_concerned_get_one_mail_each_and_nothing_personal(db: TestDb) {
    let world = World::start(db).await;
    let referring: OrgId = fresh();
    let providers: [OrgId; 2] = [fresh(), fresh()];
    // Who wants mail, who does not, who has no address; who is no longer here.
    let caseworker = world
        .person(referring, Role::Caseworker, "caseworker", Some(true))
        .await;
    world
        .person(referring, Role::Caseworker, "other-caseworker", Some(true))
        .await;
    let focal = world.person(providers[0], Role::FocalPoint, "focal", Some(true)).await;
    world
        .person(providers[0], Role::FocalPoint, "focal-opted-out", Some(false))
        .await;
    world
        .person(providers[0], Role::FocalPoint, "focal-no-address", None)
        .await;
    world
        .person(providers[1], Role::FocalPoint, "focal-two", Some(true))
        .await;
    let net = network(&world, caseworker, referring, focal, providers).await;
    world
        .person(net.hub, Role::Coordinator, "coordinator", Some(true))
        .await;
    let gone = world
        .person(net.hub, Role::Coordinator, "coordinator-gone", Some(true))
        .await;
    world
        .accounts
        .disable(fresh(), gone)
        .await
        .expect("disable a coordinator");
    // A coordinator who signs in with OIDC: no local account, only their own setting.
    let oidc: UserId = fresh();
    world
        .set_mail(&actor(oidc, net.hub, Role::Coordinator), "coordinator-oidc", true)
        .await;

    let sink = SmtpSink::start().expect("an SMTP sink");
    let running = world.notify(&sink).await;

    // Requested, missed its acknowledgement, escalated, then accepted.
    let first = refer(&world, &net, 0, ServiceCategory::Health, Priority::Emergency).await;
    overdue_and_escalate(&world, &net, first).await;
    net.act_by(&world.store, first, 0, ReferralCommand::Accept).await;
    // Requested of the other provider, declined with a reason in words.
    let second = refer(&world, &net, 1, ServiceCategory::Legal, Priority::Routine).await;
    decline(&world, &net, second, 1).await;

    let (first, second) = (first.to_string(), second.to_string());
    let expected: BTreeMap<(String, String, String), usize> = [
        ("focal", "requested", &first),
        ("focal", "response_overdue", &first),
        ("caseworker", "response_overdue", &first),
        ("coordinator", "escalated", &first),
        ("coordinator-oidc", "escalated", &first),
        ("caseworker", "accepted", &first),
        ("focal-two", "requested", &second),
        ("caseworker", "rejected", &second),
    ]
    .into_iter()
    .map(|(who, kind, referral)| ((address(who), kind.to_owned(), referral.clone()), 1))
    .collect();
    wait_mail(&sink, expected.len());
    running.quiet(&world).await;
    let mail = sink.messages();
    assert_eq!(tally(&mail), expected);

    for message in &mail {
        let text = message.text();
        assert!(
            !text.contains(MARKER),
            "a planted personal marker is in a mail to {}",
            message.to[0]
        );
        // Unencoded, so that the search above saw every byte as a client shows it.
        assert_eq!(message.header("content-transfer-encoding").as_deref(), Some("7bit"));
        let id = message.header("message-id").expect("a Message-ID");
        assert!(id.ends_with(".notify@wasl.test.example.org>"), "{id}");
        assert_eq!(message.header("auto-submitted").as_deref(), Some("auto-generated"));
        assert!(message.header("subject").is_some_and(|s| s.starts_with("[Wasl] ")));
    }
    let counts = running.service.mail().await.expect("counts");
    assert_eq!((counts.sent, counts.pending, counts.failed), (8, 0, 0));

    // A restart, then a replay of the whole log: nothing is mailed twice.
    running.stop().await;
    let running = world.notify(&sink).await;
    running.quiet(&world).await;
    running.stop().await;
    replay_from_the_start(&world.db.url).await;
    let running = world.notify(&sink).await;
    running.quiet(&world).await;
    assert_eq!(
        running.service.checkpoint().await.expect("checkpoint").0,
        world.log_end().await
    );
    assert_eq!(
        sink.messages().len(),
        expected.len(),
        "a restart or a replay mailed again"
    );

    // Opting out stops the next mail; the other focal point is not told either.
    world
        .set_mail(&actor(focal, providers[0], Role::FocalPoint), "focal", false)
        .await;
    let third = refer(&world, &net, 0, ServiceCategory::Legal, Priority::Urgent).await;
    net.act_by(&world.store, third, 0, ReferralCommand::Accept).await;
    let mail = wait_mail(&sink, expected.len() + 1);
    running.quiet(&world).await;
    let mail_now = sink.messages();
    assert_eq!(mail_now.len(), mail.len());
    let last = tally(&mail_now[expected.len()..]);
    assert_eq!(
        last.into_iter().collect::<Vec<_>>(),
        [((address("caseworker"), "accepted".to_owned(), third.to_string()), 1)]
    );
    running.stop().await;
}

on_both!(
    the_people_concerned_get_one_mail_each,
    the_people_concerned_get_one_mail_each_and_nothing_personal
);

/// Moves the service's checkpoint back to the start of the log, as a restore of an older
/// database would.
async fn replay_from_the_start(url: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("the database");
    sqlx::query("UPDATE notify_state SET checkpoint = 0, checkpoint_event = NULL")
        .execute(&pool)
        .await
        .expect("rewind");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_at_first_is_tried_again_until_the_mail_arrives() {
    let world = World::start(TestDb::sqlite()).await;
    let referring: OrgId = fresh();
    let providers: [OrgId; 2] = [fresh(), fresh()];
    let caseworker = world.person(referring, Role::Caseworker, "caseworker", None).await;
    let focal = world.person(providers[0], Role::FocalPoint, "focal", Some(true)).await;
    let net = network(&world, caseworker, referring, focal, providers).await;
    let sink = SmtpSink::builder().refuse_first(3).start().expect("an SMTP sink");
    let running = world.notify(&sink).await;

    let referral = refer(&world, &net, 0, ServiceCategory::Health, Priority::Urgent).await;
    let mail = wait_mail(&sink, 1);
    running.quiet(&world).await;
    assert_eq!(sink.refused(), 3);
    assert_eq!(
        tally(&mail).into_iter().collect::<Vec<_>>(),
        [((address("focal"), "requested".to_owned(), referral.to_string()), 1)]
    );
    assert_eq!(sink.messages().len(), 1);
    assert!(running.service.metrics().retried.load(Ordering::Relaxed) >= 3);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_messages_are_passed_over_and_counted() {
    let world = World::start(TestDb::sqlite()).await;
    let referring: OrgId = fresh();
    let providers: [OrgId; 2] = [fresh(), fresh()];
    let caseworker = world.person(referring, Role::Caseworker, "caseworker", None).await;
    let focal = world.person(providers[0], Role::FocalPoint, "focal", Some(true)).await;
    let net = network(&world, caseworker, referring, focal, providers).await;
    let sink = SmtpSink::start().expect("an SMTP sink");
    let running = world.notify(&sink).await;

    // Garbage on the event log and on the accounts log, from anyone who may publish there.
    let js = async_nats::jetstream::new(connect(&world.server.url()).await);
    let subject = format!("wasl.evt.referral.{}", fresh::<UserId>());
    js.publish(subject, "not an event".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    js.publish(format!("wasl.acct.notify.{}", fresh::<UserId>()), "{not json".into())
        .await
        .expect("publish")
        .await
        .expect("stored");

    let referral = refer(&world, &net, 0, ServiceCategory::Health, Priority::Routine).await;
    let mail = wait_mail(&sink, 1);
    running.quiet(&world).await;
    assert_eq!(
        tally(&mail).into_iter().collect::<Vec<_>>(),
        [((address("focal"), "requested".to_owned(), referral.to_string()), 1)]
    );
    assert_eq!(running.service.metrics().parked.load(Ordering::Relaxed), 1);
    assert_eq!(running.service.directory().unreadable(), 1);
    running.stop().await;
}
