//! The typed queries: filters return exactly the matching rows, pages cover every row once in
//! the promised order, cursors are checked, the inbox and the worklist show what their users
//! must see, and the directory search finds services by category, place, language and
//! availability. Bulk checks compare with the final domain states of a generated history;
//! the named scenarios are built command by command through the domain.

use crate::support::{Open, TestDb};
use crate::world::{World, admin, consenting_case, decline, referral_request, register, spec, whole};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use wasl_domain::Role;
use wasl_domain::case::{Case, CaseCommand, CaseState, CaseStatus, OpenCase, Scope};
use wasl_domain::catalogue::{AcknowledgeCode, Decline, DeclineCode, Priority, Reason, ServiceCategory};
use wasl_domain::client::{Age, Identifying, Language, Sex, SurvivorCode, SurvivorCodeLookup};
use wasl_domain::directory::{Eligibility, OrgKind, Organisation, OrganisationCommand, OrganisationState};
use wasl_domain::geo::{District, Governorate, Location};
use wasl_domain::ids::{CaseId, ConsentId, OrgId, ReferralId, ServiceId, UserId};
use wasl_domain::pii::PersonalData;
use wasl_domain::referral::{
    FollowUp, OverdueKind, Referral, ReferralCommand, ReferralEvent, ReferralState, ReferralStatus, RequestReferral,
    ServiceReceived,
};
use wasl_domain::testing::{actor, any_consent, id, profile};
use wasl_events::{DomainEvent, StoredEvent};
use wasl_projections::apply::Entry;
use wasl_projections::query::{
    CaseFilter, DirectorySearch, EscalationFilter, Need, OPEN_STATUSES, Page, PageRequest, ReferralFilter,
    SurvivorCodeQuery, WorkNeed,
};
use wasl_projections::{Projection, ProjectionError, ReadModels};
use wasl_synth::{Generator, HistoryConfig};
use wasl_testkit::on_both;

// ---------------------------------------------------------------------------------------------
// Paging helpers

/// Reads every page of a query with `limit` rows per page, checking each page's shape.
async fn all_pages<T, F, Fut>(limit: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, ProjectionError>>,
{
    let mut out = Vec::new();
    let mut request = PageRequest::first(limit);
    for _ in 0..10_000 {
        let page = fetch(request).await.expect("a page");
        match page.next {
            Some(next) => {
                assert_eq!(page.items.len(), limit as usize, "only the last page may be short");
                out.extend(page.items);
                request = PageRequest::continuing(limit, next);
            }
            None => {
                assert!(page.items.len() <= limit as usize);
                out.extend(page.items);
                return out;
            }
        }
    }
    panic!("the pages never ended");
}

// ---------------------------------------------------------------------------------------------
// A generated history and what the domain says about it

const SEED: u64 = 20_260_101;

/// The final domain states of a generated history, and when each aggregate first and last
/// changed (from the events, not from the read models).
struct Generated {
    cases: BTreeMap<CaseId, CaseState>,
    referrals: BTreeMap<ReferralId, ReferralState>,
    organisations: BTreeMap<OrgId, OrganisationState>,
    first_change: HashMap<String, i64>,
    last_change: HashMap<String, i64>,
    events: HashMap<String, usize>,
    /// When each rejected referral was declined.
    rejected_at: HashMap<ReferralId, i64>,
    /// When each escalated referral was last escalated.
    escalated_at: HashMap<ReferralId, i64>,
    /// The client's governorate of each referral.
    governorate: HashMap<ReferralId, Governorate>,
}

impl Generated {
    fn last(&self, id: impl ToString) -> i64 {
        self.last_change[&id.to_string()]
    }

    fn first(&self, id: impl ToString) -> i64 {
        self.first_change[&id.to_string()]
    }

    /// The cases matching `keep`, newest change first.
    fn cases_where(&self, keep: impl Fn(&CaseState) -> bool) -> Vec<String> {
        let mut ids: Vec<(i64, String)> = self
            .cases
            .values()
            .filter(|c| keep(c))
            .map(|c| (self.last(c.id), c.id.to_string()))
            .collect();
        ids.sort_by(|a, b| b.cmp(a));
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// The referrals matching `keep`, newest change first.
    fn referrals_where(&self, keep: impl Fn(&ReferralState) -> bool) -> Vec<String> {
        let mut ids: Vec<(i64, String)> = self
            .referrals
            .values()
            .filter(|r| keep(r))
            .map(|r| (self.last(r.id), r.id.to_string()))
            .collect();
        ids.sort_by(|a, b| b.cmp(a));
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Whether the client of a declined referral was referred again: a follow-on names it, or
    /// a referral of the same case for the same category was requested after the decline.
    fn referred_again(&self, r: &ReferralState) -> bool {
        let declined = self.rejected_at[&r.id];
        self.referrals.values().any(|other| {
            other.redirected_from == Some(r.id)
                || (other.case_id == r.case_id && other.category == r.category && self.first(other.id) > declined)
        })
    }

    /// What a referral needs from its caseworker, by the worklist's rules.
    fn need(&self, r: &ReferralState) -> Option<WorkNeed> {
        use ReferralStatus as S;
        match r.status {
            S::Completed | S::Failed if !r.followed_up => Some(WorkNeed::FollowUpDue),
            S::Rejected if !self.referred_again(r) => {
                let decline = r.decline.as_ref().expect("a rejected referral has its decline");
                if decline.reason.code == DeclineCode::Redirected && decline.suggested_org.is_some() {
                    Some(WorkNeed::SuggestedReferral)
                } else {
                    Some(WorkNeed::Declined)
                }
            }
            _ if response_overdue(r) => Some(WorkNeed::Overdue),
            _ => None,
        }
    }
}

/// Whether a response deadline the receiving organisation missed still applies (the domain's
/// rule, written out again here).
fn response_overdue(r: &ReferralState) -> bool {
    match r.status {
        ReferralStatus::Requested => {
            r.overdue.contains(&OverdueKind::Acknowledgement) || r.overdue.contains(&OverdueKind::Decision)
        }
        ReferralStatus::Received => r.overdue.contains(&OverdueKind::Decision),
        _ => false,
    }
}

/// Generates a history of `referrals` referrals, projects it and returns the read models with
/// the domain's view of the same history.
async fn generated(db: &TestDb, referrals: usize) -> (ReadModels, Generated) {
    let mut generator = Generator::new(HistoryConfig::new(SEED, referrals));
    let events: Vec<StoredEvent> = generator.by_ref().collect();
    let mut first_change = HashMap::new();
    let mut last_change = HashMap::new();
    let mut counts = HashMap::new();
    let (mut rejected_at, mut escalated_at, mut governorate) = (HashMap::new(), HashMap::new(), HashMap::new());
    for event in &events {
        if let DomainEvent::Referral(id, e) = &event.event {
            let at = event.meta.occurred_at.unix_millis();
            match e {
                ReferralEvent::Requested(r) => {
                    governorate.insert(*id, r.client.location.governorate());
                }
                ReferralEvent::Rejected(_) => {
                    rejected_at.insert(*id, at);
                }
                ReferralEvent::Escalated { .. } => {
                    escalated_at.insert(*id, at);
                }
                _ => {}
            }
        }
        let id = match &event.event {
            DomainEvent::Case(id, _) => id.to_string(),
            DomainEvent::Referral(id, _) => id.to_string(),
            DomainEvent::Organisation(id, _) => id.to_string(),
        };
        let at = event.meta.occurred_at.unix_millis();
        first_change.entry(id.clone()).or_insert(at);
        last_change.insert(id.clone(), at);
        *counts.entry(id).or_insert(0) += 1;
    }
    let entries: Vec<Entry> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| Entry::of(i as u64 + 1, e))
        .collect();
    let models = db.open().await;
    models
        .project(Projection::ALL, &entries)
        .await
        .expect("project the history");
    let generated = Generated {
        cases: generator
            .cases()
            .iter()
            .filter_map(|(id, c)| Some((*id, c.state()?.clone())))
            .collect(),
        referrals: generator
            .referrals()
            .iter()
            .filter_map(|(id, r)| Some((*id, r.state()?.clone())))
            .collect(),
        organisations: generator
            .organisations()
            .iter()
            .filter_map(|(id, o)| Some((*id, o.state()?.clone())))
            .collect(),
        first_change,
        last_change,
        events: counts,
        rejected_at,
        escalated_at,
        governorate,
    };
    assert!(
        generated.cases.len() > 20 && generated.referrals.len() > 50,
        "a history worth querying"
    );
    (models, generated)
}

/// The most frequent value of `key` among `items` (ties: the smallest), to pick a filter
/// value that matches several rows.
fn most_common<T, K: Ord + Clone>(items: impl IntoIterator<Item = T>, key: impl Fn(T) -> K) -> K {
    let mut counts: BTreeMap<K, usize> = BTreeMap::new();
    for item in items {
        *counts.entry(key(item)).or_default() += 1;
    }
    let best = counts.values().copied().max().expect("some items");
    counts
        .into_iter()
        .find(|(_, n)| *n == best)
        .map(|(k, _)| k)
        .expect("a most common value")
}

// ---------------------------------------------------------------------------------------------
// Cases

async fn cases_are_filtered_and_paged_newest_change_first(db: TestDb) {
    let (models, g) = generated(&db, 200).await;
    let some = |f: fn(&CaseState) -> bool| g.cases.values().filter(|c| f(c)).count();
    assert!(some(|c| c.status == CaseStatus::Open) > 0 && some(|c| c.status == CaseStatus::Closed) > 0);

    // The organisation and place with the most open cases, so that every combined filter below
    // has a case to find whatever the seed's history holds.
    let open = || g.cases.values().filter(|c| c.status == CaseStatus::Open);
    let org = most_common(open(), |c| c.owner_org);
    let worker = most_common(g.cases.values(), |c| c.caseworker);
    let worker_org = g
        .cases
        .values()
        .find(|c| c.caseworker == worker)
        .expect("a case")
        .owner_org;
    let place = most_common(open().filter(|c| c.owner_org == org), |c| {
        c.profile.location.governorate()
    });
    let one = g.cases.values().nth(g.cases.len() / 2).expect("a case");
    let lookup_of = |profile: &wasl_domain::client::ClientProfile| match &profile.identifying {
        Identifying::Sealed(sealed) => Some(sealed.lookup),
        Identifying::Clear(_) => None,
    };
    let lookup = lookup_of(&one.profile).expect("synthetic histories seal the identifying facts");
    let by_code = |lookup: [u8; 32]| SurvivorCodeQuery {
        // Every case of the history is sealed: only the lookup hash can match.
        code: SurvivorCode::parse("TEST-0000").expect("code"),
        lookup: SurvivorCodeLookup::from_bytes(lookup),
    };

    let checks: Vec<(&str, CaseFilter, Vec<String>)> = vec![
        ("every case", CaseFilter::default(), g.cases_where(|_| true)),
        (
            "owner organisation",
            CaseFilter {
                owner_org: Some(org),
                ..CaseFilter::default()
            },
            g.cases_where(|c| c.owner_org == org),
        ),
        (
            "caseworker",
            CaseFilter {
                caseworker: Some(worker),
                ..CaseFilter::default()
            },
            g.cases_where(|c| c.caseworker == worker),
        ),
        (
            "need-to-know: the organisation's cases its caseworker is responsible for",
            CaseFilter {
                owner_org: Some(worker_org),
                assigned_to: Some(worker),
                ..CaseFilter::default()
            },
            g.cases_where(|c| c.owner_org == worker_org && c.caseworker == worker),
        ),
        (
            "no match: need-to-know of a user with no case",
            CaseFilter {
                assigned_to: Some(id(253)),
                ..CaseFilter::default()
            },
            vec![],
        ),
        (
            "closed",
            CaseFilter {
                status: Some(CaseStatus::Closed),
                ..CaseFilter::default()
            },
            g.cases_where(|c| c.status == CaseStatus::Closed),
        ),
        (
            "governorate",
            CaseFilter {
                governorate: Some(place),
                ..CaseFilter::default()
            },
            g.cases_where(|c| c.profile.location.governorate() == place),
        ),
        (
            "survivor code, by its keyed hash",
            CaseFilter {
                survivor_code: Some(by_code(*lookup.as_bytes())),
                ..CaseFilter::default()
            },
            g.cases_where(|c| lookup_of(&c.profile) == Some(lookup)),
        ),
        (
            "open cases of one organisation in one governorate",
            CaseFilter {
                owner_org: Some(org),
                status: Some(CaseStatus::Open),
                governorate: Some(place),
                ..CaseFilter::default()
            },
            g.cases_where(|c| {
                c.owner_org == org && c.status == CaseStatus::Open && c.profile.location.governorate() == place
            }),
        ),
        (
            "no match: a survivor code no case has",
            CaseFilter {
                survivor_code: Some(by_code([0; 32])),
                ..CaseFilter::default()
            },
            vec![],
        ),
        (
            "no match: an organisation without cases",
            CaseFilter {
                owner_org: Some(id(250)),
                ..CaseFilter::default()
            },
            vec![],
        ),
    ];
    for (what, filter, expected) in checks {
        assert!(
            what.starts_with("no match") || !expected.is_empty(),
            "{what}: the history has no such case"
        );
        let rows = all_pages(7, |p| {
            let (models, filter) = (&models, &filter);
            async move { models.cases(filter, &p).await }
        })
        .await;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids, expected, "{what}");
        for row in &rows {
            assert_eq!(row.updated_at, g.last(&row.id), "{what}: updated_at of {}", row.id);
        }
    }
    assert_eq!(
        g.cases_where(|c| lookup_of(&c.profile) == Some(lookup)).len(),
        1,
        "survivor codes are unique"
    );

    let row = models
        .case(one.id)
        .await
        .expect("read a case")
        .expect("the case exists");
    assert_eq!(row.id, one.id.to_string());
    assert_eq!(row.owner_org, one.owner_org.to_string());
    // The code is in the row only as its keyed hash; the facts are sealed, bound to the event
    // that recorded them, and gone once the case is erased.
    assert_eq!(row.survivor_code, "", "no code in the clear");
    let kept = row.personal_data_erased == 0;
    assert_eq!(row.survivor_code_lookup, kept.then(|| lookup.to_hex()));
    assert_eq!(row.sealed_survivor_code.is_some(), kept);
    assert_eq!(row.profile_event.is_some(), kept);
    assert_eq!(models.case(id(251)).await.expect("read a case"), None);
}
on_both!(
    cases_filtered_and_paged,
    cases_are_filtered_and_paged_newest_change_first
);

// ---------------------------------------------------------------------------------------------
// Referrals

async fn referrals_are_filtered_and_paged_newest_change_first(db: TestDb) {
    let (models, g) = generated(&db, 200).await;
    let case = most_common(g.referrals.values(), |r| r.case_id);
    let from_org = most_common(g.referrals.values(), |r| r.from_org);
    let to_org = most_common(g.referrals.values(), |r| r.to_org);
    let from_user = most_common(g.referrals.values(), |r| r.from_user);
    let case_worker = most_common(g.referrals.values(), |r| g.cases[&r.case_id].caseworker);
    let worker_org = g
        .cases
        .values()
        .find(|c| c.caseworker == case_worker)
        .expect("a case")
        .owner_org;
    let category = most_common(g.referrals.values(), |r| r.category);
    let priority = most_common(g.referrals.values(), |r| r.priority);
    let ended = vec![ReferralStatus::Completed, ReferralStatus::Failed];
    let any = ReferralFilter::default;

    let checks: Vec<(&str, ReferralFilter, Vec<String>)> = vec![
        ("every referral", any(), g.referrals_where(|_| true)),
        (
            "case",
            ReferralFilter {
                case_id: Some(case),
                ..any()
            },
            g.referrals_where(|r| r.case_id == case),
        ),
        (
            "referring organisation",
            ReferralFilter {
                from_org: Some(from_org),
                ..any()
            },
            g.referrals_where(|r| r.from_org == from_org),
        ),
        (
            "receiving organisation",
            ReferralFilter {
                to_org: Some(to_org),
                ..any()
            },
            g.referrals_where(|r| r.to_org == to_org),
        ),
        (
            "caseworker",
            ReferralFilter {
                from_user: Some(from_user),
                ..any()
            },
            g.referrals_where(|r| r.from_user == from_user),
        ),
        (
            "need-to-know: the referrals made for the cases one caseworker is responsible for",
            ReferralFilter {
                from_org: Some(worker_org),
                case_assigned_to: Some(case_worker),
                ..any()
            },
            g.referrals_where(|r| r.from_org == worker_org && g.cases[&r.case_id].caseworker == case_worker),
        ),
        (
            "completed or failed",
            ReferralFilter {
                statuses: ended.clone(),
                ..any()
            },
            g.referrals_where(|r| ended.contains(&r.status)),
        ),
        (
            "category",
            ReferralFilter {
                category: Some(category),
                ..any()
            },
            g.referrals_where(|r| r.category == category),
        ),
        (
            "priority",
            ReferralFilter {
                priority: Some(priority),
                ..any()
            },
            g.referrals_where(|r| r.priority == priority),
        ),
        (
            "everything at once",
            ReferralFilter {
                from_org: Some(from_org),
                statuses: ended.clone(),
                category: Some(category),
                ..any()
            },
            g.referrals_where(|r| r.from_org == from_org && ended.contains(&r.status) && r.category == category),
        ),
        (
            "no match: a caseworker who made none",
            ReferralFilter {
                from_user: Some(id(252)),
                ..any()
            },
            vec![],
        ),
    ];
    for (what, filter, expected) in checks {
        assert!(
            what.starts_with("no match") || !expected.is_empty(),
            "{what}: the history has no such referral"
        );
        let rows = all_pages(9, |p| {
            let (models, filter) = (&models, &filter);
            async move { models.referrals(filter, &p).await }
        })
        .await;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids, expected, "{what}");
        for row in &rows {
            assert_eq!(row.updated_at, g.last(&row.id), "{what}: updated_at of {}", row.id);
        }
    }

    // One referral and its timeline.
    let state = g
        .referrals
        .values()
        .max_by_key(|r| (g.events[&r.id.to_string()], r.id))
        .expect("a referral");
    let row = models
        .referral(state.id)
        .await
        .expect("read")
        .expect("the referral exists");
    assert_eq!(row.status, state.status.code());
    assert_eq!(row.to_org, state.to_org.to_string());
    assert_eq!(models.referral(id(253)).await.expect("read"), None);
    let history = models.history(state.id).await.expect("read the history");
    assert_eq!(history.len(), g.events[&state.id.to_string()]);
    assert!(history.windows(2).all(|w| w[0].seq < w[1].seq), "in log order");
    assert_eq!(
        history.iter().map(|h| h.version).collect::<Vec<_>>(),
        (1..=history.len() as i64).collect::<Vec<_>>()
    );
    assert_eq!(history.first().map(|h| h.from_status.clone()), Some(None));
    assert_eq!(history.first().map(|h| h.at), Some(g.first(state.id)));
    assert_eq!(history.last().map(|h| h.to_status.as_str()), Some(state.status.code()));
    assert!(history.iter().all(|h| h.referral_id == row.id));
    assert!(models.history(id(253)).await.expect("read").is_empty());
}
on_both!(
    referrals_filtered_and_paged,
    referrals_are_filtered_and_paged_newest_change_first
);

async fn every_page_size_yields_every_row_once_in_the_same_order(db: TestDb) {
    let (models, g) = generated(&db, 120).await;
    let filter = ReferralFilter::default();
    let mut seen: Vec<Vec<String>> = Vec::new();
    for limit in [1, 2, 5, 50, 500] {
        let rows = all_pages(limit, |p| {
            let (models, filter) = (&models, &filter);
            async move { models.referrals(filter, &p).await }
        })
        .await;
        seen.push(rows.into_iter().map(|r| r.id).collect());
    }
    let expected = g.referrals_where(|_| true);
    for ids in &seen {
        assert_eq!(ids, &expected);
    }
    // Limit 0 still reads one row at a time rather than nothing forever.
    let first = models.referrals(&filter, &PageRequest::first(0)).await.expect("a page");
    assert_eq!(first.items.len(), 1);
    assert!(first.next.is_some());
    // A page request with no limit given reads the default.
    let default = models
        .referrals(&filter, &PageRequest::default())
        .await
        .expect("a page");
    assert_eq!(default.items.len(), expected.len().min(50));
}
on_both!(
    paging_covers_every_row_once,
    every_page_size_yields_every_row_once_in_the_same_order
);

async fn a_cursor_the_api_did_not_issue_is_refused(db: TestDb) {
    let (models, g) = generated(&db, 60).await;
    let org = *g.organisations.keys().next().expect("an organisation");
    let user = g.referrals.values().next().expect("a referral").from_user;
    let cases_cursor = models
        .cases(&CaseFilter::default(), &PageRequest::first(1))
        .await
        .expect("a page")
        .next
        .expect("more than one case");
    let truncated = cases_cursor[..cases_cursor.len() - 3].to_owned();
    let garbage = [
        "garbage".to_owned(),
        String::new(),
        "v1.cases.1.2.3".to_owned(),
        "%00';DROP TABLE cases;--".to_owned(),
        "v1.cases.١٢٣.00".to_owned(),
        truncated,
        "x".repeat(5_000),
    ];
    for cursor in &garbage {
        let p = PageRequest::continuing(10, cursor.clone());
        assert!(
            refused(models.cases(&CaseFilter::default(), &p).await),
            "cases {cursor:?}"
        );
        assert!(
            refused(models.referrals(&ReferralFilter::default(), &p).await),
            "referrals {cursor:?}"
        );
        assert!(refused(models.inbox(org, &[], &p).await), "inbox {cursor:?}");
        assert!(refused(models.worklist(user, false, &p).await), "worklist {cursor:?}");
        assert!(
            refused(models.search_services(&DirectorySearch::default(), &p).await),
            "directory {cursor:?}"
        );
        assert!(refused(models.organisations(&p).await), "organisations {cursor:?}");
    }
    // One query's cursor is not another's, even when both sort by a time.
    let p = PageRequest::continuing(10, cases_cursor.clone());
    assert!(matches!(
        models.referrals(&ReferralFilter::default(), &p).await,
        Err(ProjectionError::BadCursor)
    ));
    assert!(matches!(
        models.inbox(org, &[], &p).await,
        Err(ProjectionError::BadCursor)
    ));
    assert!(matches!(
        models.worklist(user, false, &p).await,
        Err(ProjectionError::BadCursor)
    ));
    // Refused with a survivor code filter as well.
    let no_code = CaseFilter {
        survivor_code: Some(SurvivorCodeQuery {
            code: SurvivorCode::parse("TEST-0000").expect("code"),
            lookup: SurvivorCodeLookup::from_bytes([0; 32]),
        }),
        ..CaseFilter::default()
    };
    let garbled = PageRequest::continuing(10, "garbage");
    assert!(matches!(
        models.cases(&no_code, &garbled).await,
        Err(ProjectionError::BadCursor)
    ));
    // The cursor it issued still works.
    assert!(models.cases(&CaseFilter::default(), &p).await.is_ok());
}
fn refused<T>(result: Result<T, ProjectionError>) -> bool {
    matches!(result, Err(ProjectionError::BadCursor))
}

on_both!(bad_cursors_are_refused, a_cursor_the_api_did_not_issue_is_refused);

// ---------------------------------------------------------------------------------------------
// Inbox and worklist over a generated history

async fn each_inbox_holds_its_organisations_open_referrals_overdue_first_then_newest(db: TestDb) {
    let (models, g) = generated(&db, 200).await;
    let mut nonempty = 0;
    for org in g.organisations.keys().copied() {
        // Open (the default), a mix, only closed, one open: the inbox's `is_open` shortcut must
        // agree with the status list in each case.
        for statuses in [
            vec![],
            vec![ReferralStatus::Rejected, ReferralStatus::Requested],
            vec![ReferralStatus::Completed, ReferralStatus::Cancelled],
            vec![ReferralStatus::OnHold],
        ] {
            let wanted: &[ReferralStatus] = if statuses.is_empty() { OPEN_STATUSES } else { &statuses };
            let rows = all_pages(4, |p| {
                let (models, statuses) = (&models, &statuses);
                async move { models.inbox(org, statuses, &p).await }
            })
            .await;
            assert!(
                rows.iter().all(|r| r.to_org == org.to_string()),
                "another organisation's referral"
            );
            // Overdue first, then newest request first.
            let mut expected: Vec<(bool, i64, String)> = g
                .referrals
                .values()
                .filter(|r| r.to_org == org && wanted.contains(&r.status))
                .map(|r| (response_overdue(r), g.first(r.id), r.id.to_string()))
                .collect();
            expected.sort_by(|a, b| b.cmp(a));
            let got: Vec<(bool, i64, String)> = rows
                .iter()
                .map(|r| (r.response_overdue == 1, r.requested_at, r.id.clone()))
                .collect();
            assert_eq!(got, expected, "inbox of {org} in {wanted:?}");
            nonempty += usize::from(!got.is_empty());
        }
        let counts = models.inbox_counts(org).await.expect("count the inbox");
        let expected: Vec<(ReferralStatus, u64)> = ReferralStatus::ALL
            .iter()
            .map(|s| {
                (
                    *s,
                    g.referrals
                        .values()
                        .filter(|r| r.to_org == org && r.status == *s)
                        .count() as u64,
                )
            })
            .collect();
        assert_eq!(counts, expected, "inbox counts of {org}");
    }
    assert!(nonempty > 3, "several inboxes hold referrals");
    let nobody: OrgId = id(254);
    assert!(
        models
            .inbox(nobody, &[], &PageRequest::default())
            .await
            .expect("a page")
            .items
            .is_empty()
    );
    assert!(
        models
            .inbox_counts(nobody)
            .await
            .expect("counts")
            .iter()
            .all(|(_, n)| *n == 0)
    );
}
on_both!(
    inbox_per_organisation,
    each_inbox_holds_its_organisations_open_referrals_overdue_first_then_newest
);

async fn each_worklist_holds_the_caseworkers_own_referrals_that_wait_for_them(db: TestDb) {
    let (models, g) = generated(&db, 200).await;
    let mut users: Vec<UserId> = g.referrals.values().map(|r| r.from_user).collect();
    users.sort();
    users.dedup();
    let mut needs: HashMap<WorkNeed, usize> = HashMap::new();
    let mut reassigned = 0;
    for user in users {
        let items = all_pages(3, |p| {
            let models = &models;
            async move { models.worklist(user, false, &p).await }
        })
        .await;
        let mut expected: Vec<(i64, String, WorkNeed)> = g
            .referrals
            .values()
            .filter(|r| r.from_user == user)
            .filter_map(|r| Some((g.last(r.id), r.id.to_string(), g.need(r)?)))
            .collect();
        expected.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
        let got: Vec<(i64, String, WorkNeed)> = items
            .iter()
            .map(|i| (i.referral.updated_at, i.referral.id.clone(), i.need))
            .collect();
        assert_eq!(got, expected, "worklist of {user}");
        assert!(items.iter().all(|i| i.referral.from_user == user.to_string()));
        // Need-to-know: only the referrals of the cases still assigned or shared to them.
        let known = all_pages(3, |p| {
            let models = &models;
            async move { models.worklist(user, true, &p).await }
        })
        .await;
        let known: Vec<String> = known.iter().map(|i| i.referral.id.clone()).collect();
        let want: Vec<String> = got
            .iter()
            .filter(|(_, id, _)| {
                g.referrals.values().any(|r| {
                    let case = &g.cases[&r.case_id];
                    r.id.to_string() == *id && (case.caseworker == user || case.shared_with.contains(&user))
                })
            })
            .map(|(_, id, _)| id.clone())
            .collect();
        assert_eq!(known, want, "need-to-know worklist of {user}");
        reassigned += got.len() - want.len();
        for (_, _, need) in got {
            *needs.entry(need).or_default() += 1;
        }
    }
    assert!(
        reassigned > 0,
        "the history reassigns some cases with referrals on a worklist"
    );
    // The generated histories answer every referral in the end, so no overdue is left; the
    // scenarios below cover it.
    for need in [WorkNeed::FollowUpDue, WorkNeed::Declined] {
        assert!(
            needs.get(&need).is_some_and(|n| *n > 0),
            "the history gives some {need:?}: {needs:?}"
        );
    }
}
on_both!(
    worklist_per_caseworker,
    each_worklist_holds_the_caseworkers_own_referrals_that_wait_for_them
);

async fn the_escalation_list_holds_every_escalated_referral_newest_escalation_first(db: TestDb) {
    let (models, g) = generated(&db, 300).await;
    let escalated: Vec<&ReferralState> = g.referrals.values().filter(|r| !r.escalated.is_empty()).collect();
    let open = |r: &ReferralState| r.escalated.iter().any(|k| !r.acknowledged.contains(k));
    assert!(
        escalated.iter().any(|r| open(r)) && escalated.iter().any(|r| !open(r)),
        "the history has open and acknowledged escalations"
    );
    let place = most_common(escalated.iter(), |r| g.governorate[&r.id]);
    let category = most_common(escalated.iter(), |r| r.category);
    let to_org = most_common(escalated.iter(), |r| r.to_org);
    let (open_place, open_category) = most_common(escalated.iter().filter(|r| open(r)), |r| {
        (g.governorate[&r.id], r.category)
    });
    let any = EscalationFilter::default;
    type Keep<'a> = Box<dyn Fn(&ReferralState) -> bool + 'a>;
    let checks: Vec<(&str, EscalationFilter, Keep)> = vec![
        ("every escalation", any(), Box::new(|_| true)),
        (
            "governorate",
            EscalationFilter {
                governorate: Some(place),
                ..any()
            },
            Box::new(|r| g.governorate[&r.id] == place),
        ),
        (
            "category",
            EscalationFilter {
                category: Some(category),
                ..any()
            },
            Box::new(|r| r.category == category),
        ),
        (
            "receiving organisation",
            EscalationFilter {
                to_org: Some(to_org),
                ..any()
            },
            Box::new(|r| r.to_org == to_org),
        ),
        (
            "open",
            EscalationFilter {
                acknowledged: Some(false),
                ..any()
            },
            Box::new(open),
        ),
        (
            "acknowledged",
            EscalationFilter {
                acknowledged: Some(true),
                ..any()
            },
            Box::new(|r| !open(r)),
        ),
        (
            "open ones of one category in one governorate",
            EscalationFilter {
                governorate: Some(open_place),
                category: Some(open_category),
                acknowledged: Some(false),
                ..any()
            },
            Box::new(|r| g.governorate[&r.id] == open_place && r.category == open_category && open(r)),
        ),
    ];
    for (what, filter, keep) in checks {
        let mut expected: Vec<(i64, String)> = escalated
            .iter()
            .filter(|r| keep(r))
            .map(|r| (g.escalated_at[&r.id], r.id.to_string()))
            .collect();
        expected.sort_by(|a, b| b.cmp(a));
        assert!(!expected.is_empty(), "{what}: the history has no such escalation");
        let rows = all_pages(4, |p| {
            let (models, filter) = (&models, &filter);
            async move { models.escalations(filter, &p).await }
        })
        .await;
        let got: Vec<(i64, String)> = rows
            .iter()
            .map(|r| (r.escalated_at.expect("escalated"), r.id.clone()))
            .collect();
        assert_eq!(got, expected, "{what}");
        for row in &rows {
            let state = &g.referrals[&ReferralId::parse(&row.id).expect("an id")];
            let kinds = |set: &std::collections::BTreeSet<OverdueKind>| {
                set.iter().map(|k| format!(",{}", k.code())).collect::<String>() + ","
            };
            assert_eq!(row.escalated, kinds(&state.escalated), "{what}: escalated kinds");
            assert_eq!(
                row.acknowledged,
                kinds(&state.acknowledged),
                "{what}: acknowledged kinds"
            );
            assert_eq!(row.open_escalations > 0, open(state), "{what}: open");
            for kind in &state.overdue {
                let due = match kind {
                    OverdueKind::Acknowledgement => row.acknowledgement_due_at,
                    OverdueKind::Decision => row.decision_due_at,
                    OverdueKind::FollowUp => row.follow_up_due_at,
                    OverdueKind::Stalled => row.stalled_due_at,
                };
                assert!(due.is_some(), "{what}: the missed {kind} deadline is kept");
            }
        }
    }
    let nobody = EscalationFilter {
        to_org: Some(id(254)),
        ..any()
    };
    let none = models
        .escalations(&nobody, &PageRequest::default())
        .await
        .expect("a page");
    assert!(none.items.is_empty());
    let garbled = PageRequest::continuing(10, "garbage");
    assert!(refused(models.escalations(&any(), &garbled).await));
}
on_both!(
    escalation_list,
    the_escalation_list_holds_every_escalated_referral_newest_escalation_first
);

async fn the_worklist_shows_what_the_caseworker_must_do_and_drops_what_is_done(db: TestDb) {
    let models = db.open().await;
    let mut world = World::new();
    let (org_a, org_b, org_c): (OrgId, OrgId, OrgId) = (id(1), id(2), id(3));
    let caseworker = actor(id(101), org_a, Role::Caseworker);
    let colleague = actor(id(102), org_a, Role::Caseworker);
    let focal_b = actor(id(103), org_b, Role::FocalPoint);
    let system = actor(id(107), id(9), Role::System);
    let health: ServiceId = id(30);
    let legal: ServiceId = id(31);
    register(
        &mut world,
        org_a,
        "Synthetic Referring Partner",
        OrgKind::NationalNgo,
        vec![],
    );
    let provider_b = register(
        &mut world,
        org_b,
        "Synthetic Clinic Partner",
        OrgKind::InternationalNgo,
        vec![(
            30,
            spec(
                "Synthetic clinic",
                ServiceCategory::Health,
                vec![whole(Governorate::Ninawa)],
                &["ar"],
            ),
        )],
    );
    let provider_c = register(
        &mut world,
        org_c,
        "Synthetic Legal Partner",
        OrgKind::NationalNgo,
        vec![(
            31,
            spec(
                "Synthetic legal aid",
                ServiceCategory::Legal,
                vec![whole(Governorate::Ninawa)],
                &["ar"],
            ),
        )],
    );

    let case_id: CaseId = id(10);
    let mut case = Case::default();
    world.run(
        &mut case,
        case_id,
        CaseCommand::Open(OpenCase {
            case_id,
            caseworker: None,
            profile: profile("SYN-900001"),
            personal: PersonalData::default(),
        }),
        &caseworker,
    );
    world.run(
        &mut case,
        case_id,
        CaseCommand::GiveConsent {
            consent_id: id::<ConsentId>(40),
            scope: any_consent(),
        },
        &caseworker,
    );
    let request = |n: u8, provider: &Organisation, service: ServiceId, redirected_from: Option<Referral>| {
        ReferralCommand::Request(Box::new(RequestReferral {
            referral_id: id(n),
            case: case.clone(),
            provider: provider.clone(),
            service_id: service,
            priority: Priority::Routine,
            redirected_from,
            consent_override: None,
            notes: None,
        }))
    };
    let (r1, r2, r3, r4, r5): (ReferralId, ReferralId, ReferralId, ReferralId, ReferralId) =
        (id(21), id(22), id(23), id(24), id(25));
    let mut ref1 = Referral::default();
    let mut ref2 = Referral::default();
    let mut ref3 = Referral::default();
    let mut ref4 = Referral::default();
    let mut ref5 = Referral::default();
    // R1: served and completed; the caseworker has still to follow up with the client.
    world.run(&mut ref1, r1, request(21, &provider_b, health, None), &caseworker);
    for step in [
        ReferralCommand::Receive,
        ReferralCommand::Accept,
        ReferralCommand::Start,
        ReferralCommand::Complete,
    ] {
        world.run(&mut ref1, r1, step, &focal_b);
    }
    // R2: sent now, declined below.
    world.run(&mut ref2, r2, request(22, &provider_b, health, None), &caseworker);
    // R3: unanswered past its acknowledgement deadline.
    world.run(&mut ref3, r3, request(23, &provider_b, health, None), &caseworker);
    let due_at = world.now().plus_millis(30_000);
    world.at(world.now().plus_millis(120_000));
    world.run(
        &mut ref3,
        r3,
        ReferralCommand::MarkResponseOverdue {
            kind: OverdueKind::Acknowledgement,
            due_at,
        },
        &system,
    );
    // R4: just sent, nothing to do yet.
    world.run(&mut ref4, r4, request(24, &provider_b, health, None), &caseworker);
    // R2 is declined, redirected to organisation C: the last thing that happened.
    let redirect = Decline {
        reason: Reason::coded(DeclineCode::Redirected),
        suggested_org: Some(org_c),
    };
    world.run(&mut ref2, r2, ReferralCommand::Reject(redirect), &focal_b);
    world.publish(&models).await;

    let worklist = |user: UserId| {
        let models = &models;
        async move {
            let page = models
                .worklist(user, false, &PageRequest::default())
                .await
                .expect("the worklist");
            assert_eq!(page.next, None);
            page.items
                .into_iter()
                .map(|i| (i.referral.id, i.need))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        worklist(caseworker.user).await,
        vec![
            (r2.to_string(), WorkNeed::SuggestedReferral),
            (r3.to_string(), WorkNeed::Overdue),
            (r1.to_string(), WorkNeed::FollowUpDue),
        ],
        "newest change first"
    );
    assert_eq!(worklist(colleague.user).await, vec![], "only one's own referrals");

    // Paged one at a time, the same three.
    let paged = all_pages(1, |p| {
        let models = &models;
        let user = caseworker.user;
        async move { models.worklist(user, false, &p).await }
    })
    .await;
    assert_eq!(paged.len(), 3);

    // The partner inbox of B: its open referrals, the overdue one first; never another's.
    let inbox = |org: OrgId| {
        let models = &models;
        async move {
            let page = models
                .inbox(org, &[], &PageRequest::default())
                .await
                .expect("the inbox");
            page.items.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(inbox(org_b).await, vec![r3.to_string(), r4.to_string()]);
    assert_eq!(inbox(org_a).await, Vec::<String>::new());
    assert_eq!(inbox(org_c).await, Vec::<String>::new());
    let finished = models
        .inbox(
            org_b,
            &[ReferralStatus::Completed, ReferralStatus::Rejected],
            &PageRequest::default(),
        )
        .await
        .expect("the inbox");
    assert_eq!(
        finished.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        [r2.to_string(), r1.to_string()],
        "newest request first"
    );
    let counts: BTreeMap<ReferralStatus, u64> = models.inbox_counts(org_b).await.expect("counts").into_iter().collect();
    assert_eq!(counts[&ReferralStatus::Requested], 2);
    assert_eq!(counts[&ReferralStatus::Completed], 1);
    assert_eq!(counts[&ReferralStatus::Rejected], 1);
    assert_eq!(counts.values().sum::<u64>(), 4);

    // The caseworker follows up on R1, makes the follow-on referral for R2, and B answers R3.
    world.run(
        &mut ref1,
        r1,
        ReferralCommand::RecordFollowUp(FollowUp {
            client_reached: true,
            service_received: ServiceReceived::Yes,
            satisfaction: None,
            note: None,
        }),
        &caseworker,
    );
    world.run(
        &mut ref5,
        r5,
        request(25, &provider_c, legal, Some(ref2.clone())),
        &caseworker,
    );
    world.publish(&models).await;
    assert_eq!(
        worklist(caseworker.user).await,
        vec![(r3.to_string(), WorkNeed::Overdue)]
    );
    world.run(&mut ref3, r3, ReferralCommand::Receive, &focal_b);
    world.run(&mut ref3, r3, ReferralCommand::Accept, &focal_b);
    world.publish(&models).await;
    assert_eq!(worklist(caseworker.user).await, vec![]);
    assert_eq!(inbox(org_c).await, vec![r5.to_string()]);
    assert_eq!(
        inbox(org_b).await,
        vec![r4.to_string(), r3.to_string()],
        "answered, R3 is no longer overdue: newest request first"
    );

    // The referrals list of the case, and R1's timeline.
    let of_case = models
        .referrals(
            &ReferralFilter {
                case_id: Some(case_id),
                ..ReferralFilter::default()
            },
            &PageRequest::default(),
        )
        .await
        .expect("the case's referrals");
    let ids: Vec<String> = of_case.items.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, [r3, r5, r1, r2, r4].map(|r| r.to_string()), "newest change first");
    assert_eq!(of_case.items[1].redirected_from, Some(r2.to_string()));
    let timeline: Vec<(String, Option<String>, String)> = models
        .history(r1)
        .await
        .expect("the timeline")
        .into_iter()
        .map(|h| (h.event_type, h.from_status, h.to_status))
        .collect();
    let step = |t: &str, from: Option<&str>, to: &str| (t.to_owned(), from.map(str::to_owned), to.to_owned());
    assert_eq!(
        timeline,
        vec![
            step("wasl.referral.requested.v1", None, "requested"),
            step("wasl.referral.received.v1", Some("requested"), "received"),
            step("wasl.referral.accepted.v1", Some("received"), "accepted"),
            step("wasl.referral.started.v1", Some("accepted"), "in_progress"),
            step("wasl.referral.completed.v1", Some("in_progress"), "completed"),
            step("wasl.referral.follow_up_recorded.v1", Some("completed"), "completed"),
        ]
    );
}
on_both!(
    worklist_scenario,
    the_worklist_shows_what_the_caseworker_must_do_and_drops_what_is_done
);

/// A case of organisation A with consent to any organisation, opened by `caseworker`.
async fn every_decline_stays_on_the_worklist_until_the_client_is_referred_again(db: TestDb) {
    let models = db.open().await;
    let mut world = World::new();
    let (org_a, org_b, org_c, org_d): (OrgId, OrgId, OrgId, OrgId) = (id(1), id(2), id(3), id(4));
    let caseworker = actor(id(101), org_a, Role::Caseworker);
    let focal_b = actor(id(103), org_b, Role::FocalPoint);
    let focal_c = actor(id(104), org_c, Role::FocalPoint);
    let (health_b, legal_c, health_c): (ServiceId, ServiceId, ServiceId) = (id(30), id(31), id(32));
    let ninawa = || vec![whole(Governorate::Ninawa)];
    let provider_b = register(
        &mut world,
        org_b,
        "Synthetic Clinic Partner",
        OrgKind::InternationalNgo,
        vec![(30, spec("Synthetic clinic", ServiceCategory::Health, ninawa(), &["ar"]))],
    );
    let provider_c = register(
        &mut world,
        org_c,
        "Synthetic Legal Partner",
        OrgKind::NationalNgo,
        vec![
            (
                31,
                spec("Synthetic legal aid", ServiceCategory::Legal, ninawa(), &["ar"]),
            ),
            (
                32,
                spec("Synthetic second clinic", ServiceCategory::Health, ninawa(), &["ar"]),
            ),
        ],
    );
    register(
        &mut world,
        org_d,
        "Synthetic Shelter Partner",
        OrgKind::NationalNgo,
        vec![],
    );
    let case = consenting_case(&mut world, id(10), &caseworker);
    let (ra, rb, rc, rd): (ReferralId, ReferralId, ReferralId, ReferralId) = (id(21), id(22), id(23), id(24));
    let (mut a, mut b, mut c, mut d) = (
        Referral::default(),
        Referral::default(),
        Referral::default(),
        Referral::default(),
    );
    // Three referrals sent together, then three declines, each with its own coded reason.
    world.run(
        &mut a,
        ra,
        referral_request(21, &case, &provider_b, health_b),
        &caseworker,
    );
    world.run(
        &mut b,
        rb,
        referral_request(22, &case, &provider_c, legal_c),
        &caseworker,
    );
    world.run(
        &mut c,
        rc,
        referral_request(23, &case, &provider_b, health_b),
        &caseworker,
    );
    world.run(&mut a, ra, decline(DeclineCode::NoCapacity, None), &focal_b);
    world.run(&mut b, rb, decline(DeclineCode::NotEligible, None), &focal_c);
    world.run(&mut c, rc, decline(DeclineCode::Redirected, Some(org_d)), &focal_b);
    world.publish(&models).await;
    let worklist = || async {
        let page = models
            .worklist(caseworker.user, false, &PageRequest::default())
            .await
            .expect("the worklist");
        page.items
            .into_iter()
            .map(|i| (i.referral.id, i.need, i.referral.decline_code, i.referral.suggested_org))
            .collect::<Vec<_>>()
    };
    let item = |r: ReferralId, need, code: DeclineCode, suggested: Option<OrgId>| {
        (
            r.to_string(),
            need,
            Some(code.code().to_owned()),
            suggested.map(|o| o.to_string()),
        )
    };
    assert_eq!(
        worklist().await,
        vec![
            item(rc, WorkNeed::SuggestedReferral, DeclineCode::Redirected, Some(org_d)),
            item(rb, WorkNeed::Declined, DeclineCode::NotEligible, None),
            item(ra, WorkNeed::Declined, DeclineCode::NoCapacity, None),
        ],
        "every decline with its reason, newest first"
    );

    // The caseworker refers the client for health care again, elsewhere: both health declines
    // are dealt with; the legal one still waits.
    world.run(
        &mut d,
        rd,
        referral_request(25, &case, &provider_c, health_c),
        &caseworker,
    );
    world.publish(&models).await;
    assert_eq!(
        worklist().await,
        vec![item(rb, WorkNeed::Declined, DeclineCode::NotEligible, None)]
    );
}
on_both!(
    declines_on_the_worklist,
    every_decline_stays_on_the_worklist_until_the_client_is_referred_again
);

async fn an_escalation_shows_its_missed_deadline_and_leaves_the_open_list_when_acknowledged(db: TestDb) {
    let models = db.open().await;
    let mut world = World::new();
    let (org_a, org_b): (OrgId, OrgId) = (id(1), id(2));
    let caseworker = actor(id(101), org_a, Role::Caseworker);
    let system = actor(id(107), id(9), Role::System);
    let coordinator = actor(id(108), id(9), Role::Coordinator);
    let health: ServiceId = id(30);
    let provider_b = register(
        &mut world,
        org_b,
        "Synthetic Clinic Partner",
        OrgKind::InternationalNgo,
        vec![(
            30,
            spec(
                "Synthetic clinic",
                ServiceCategory::Health,
                vec![whole(Governorate::Ninawa)],
                &["ar"],
            ),
        )],
    );
    let case = consenting_case(&mut world, id(10), &caseworker);
    let (late, fresh): (ReferralId, ReferralId) = (id(21), id(22));
    let (mut l, mut f) = (Referral::default(), Referral::default());
    world.run(
        &mut l,
        late,
        referral_request(21, &case, &provider_b, health),
        &caseworker,
    );
    let due_at = world.now().plus_millis(30_000);
    world.run(
        &mut l,
        late,
        ReferralCommand::MarkResponseOverdue {
            kind: OverdueKind::Decision,
            due_at,
        },
        &system,
    );
    world.run(
        &mut l,
        late,
        ReferralCommand::Escalate {
            kind: OverdueKind::Decision,
        },
        &system,
    );
    let escalated_at = world.now().unix_millis();
    world.run(
        &mut f,
        fresh,
        referral_request(22, &case, &provider_b, health),
        &caseworker,
    );
    world.publish(&models).await;

    // The partner sees the overdue referral first, although the other one is newer.
    let inbox = models
        .inbox(org_b, &[], &PageRequest::default())
        .await
        .expect("the inbox");
    let order: Vec<(String, i64)> = inbox.items.iter().map(|r| (r.id.clone(), r.response_overdue)).collect();
    assert_eq!(order, vec![(late.to_string(), 1), (fresh.to_string(), 0)]);
    // Paged one at a time across the overdue and the other part, the same order.
    let paged = all_pages(1, |p| {
        let models = &models;
        async move { models.inbox(org_b, &[], &p).await }
    })
    .await;
    assert_eq!(
        paged.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        [late.to_string(), fresh.to_string()]
    );

    let list = |acknowledged: Option<bool>| {
        let models = &models;
        async move {
            let filter = EscalationFilter {
                acknowledged,
                ..EscalationFilter::default()
            };
            models
                .escalations(&filter, &PageRequest::default())
                .await
                .expect("the escalations")
                .items
        }
    };
    let open = list(Some(false)).await;
    assert_eq!(open.len(), 1);
    let row = &open[0];
    assert_eq!(row.id, late.to_string());
    assert_eq!(row.decision_due_at, Some(due_at.unix_millis()));
    assert_eq!(row.acknowledgement_due_at, None);
    assert_eq!(row.escalated_at, Some(escalated_at));
    assert_eq!(row.escalated, ",decision,");
    assert_eq!(row.open_escalations, 1);
    assert!(list(Some(true)).await.is_empty());

    world.run(
        &mut l,
        late,
        ReferralCommand::AcknowledgeEscalation {
            kind: OverdueKind::Decision,
            note: Some(Reason::coded(AcknowledgeCode::PartnerContacted)),
        },
        &coordinator,
    );
    world.publish(&models).await;
    assert!(list(Some(false)).await.is_empty());
    let acknowledged = list(Some(true)).await;
    assert_eq!(acknowledged.len(), 1);
    assert_eq!(acknowledged[0].acknowledged, ",decision,");
    assert_eq!(acknowledged[0].open_escalations, 0);
    assert_eq!(acknowledged[0].acknowledge_code.as_deref(), Some("partner_contacted"));
    assert_eq!(acknowledged[0].acknowledged_at, Some(world.now().unix_millis()));
    assert_eq!(list(None).await.len(), 1, "open and acknowledged alike");
    // Still overdue for the partner until it answers.
    assert_eq!(acknowledged[0].response_overdue, 1);
}
on_both!(
    escalation_scenario,
    an_escalation_shows_its_missed_deadline_and_leaves_the_open_list_when_acknowledged
);

// ---------------------------------------------------------------------------------------------
// Directory

async fn the_directory_finds_services_by_category_place_language_and_availability(db: TestDb) {
    let models = db.open().await;
    let mut world = World::new();
    let (clinic, aid): (OrgId, OrgId) = (id(2), id(3));
    let mosul = Location::new(Governorate::Ninawa, Some(District::parse("mosul").expect("district"))).expect("area");
    register(
        &mut world,
        clinic,
        "Synthetic Clinic Partner",
        OrgKind::InternationalNgo,
        vec![(
            31,
            spec(
                "Synthetic clinic",
                ServiceCategory::Health,
                vec![whole(Governorate::Ninawa)],
                &["ar", "ckb"],
            ),
        )],
    );
    let mut aid_org = register(
        &mut world,
        aid,
        "Synthetic Aid Partner",
        OrgKind::NationalNgo,
        vec![
            (
                32,
                spec(
                    "Synthetic legal aid",
                    ServiceCategory::Legal,
                    vec![whole(Governorate::Baghdad)],
                    &["ar", "en"],
                ),
            ),
            (
                33,
                spec(
                    "Synthetic counselling",
                    ServiceCategory::Psychosocial,
                    vec![whole(Governorate::Erbil)],
                    &["ckb"],
                ),
            ),
            (
                34,
                spec(
                    "Synthetic mobile clinic",
                    ServiceCategory::Health,
                    vec![whole(Governorate::Baghdad), mosul],
                    &["ar"],
                ),
            ),
        ],
    );
    world.run(
        &mut aid_org,
        aid,
        OrganisationCommand::SetAvailability {
            service_id: id(32),
            accepting: false,
            capacity: None,
        },
        &admin(),
    );
    world.run(
        &mut aid_org,
        aid,
        OrganisationCommand::RetireService { service_id: id(33) },
        &admin(),
    );
    world.publish(&models).await;

    let search = |s: DirectorySearch| {
        let models = &models;
        async move {
            let rows = all_pages(1, |p| {
                let s = &s;
                async move { models.search_services(s, &p).await }
            })
            .await;
            rows.into_iter().map(|l| l.service.id).collect::<Vec<_>>()
        }
    };
    let any = DirectorySearch::default;
    // By organisation name ("Aid" before "Clinic"), then service id; retired ones left out.
    assert_eq!(search(any()).await, sids(&[32, 34, 31]));
    assert_eq!(
        search(DirectorySearch {
            include_retired: true,
            ..any()
        })
        .await,
        sids(&[32, 33, 34, 31])
    );
    let by_category = |c| DirectorySearch {
        category: Some(c),
        ..any()
    };
    assert_eq!(search(by_category(ServiceCategory::Health)).await, sids(&[34, 31]));
    assert_eq!(search(by_category(ServiceCategory::Legal)).await, sids(&[32]));
    assert_eq!(
        search(by_category(ServiceCategory::Psychosocial)).await,
        Vec::<String>::new()
    );
    assert_eq!(search(by_category(ServiceCategory::Cash)).await, sids(&[]));
    let in_place = |g| DirectorySearch {
        governorate: Some(g),
        ..any()
    };
    assert_eq!(
        search(in_place(Governorate::Ninawa)).await,
        sids(&[34, 31]),
        "a district counts for its governorate"
    );
    assert_eq!(search(in_place(Governorate::Baghdad)).await, sids(&[32, 34]));
    assert_eq!(search(in_place(Governorate::Erbil)).await, Vec::<String>::new());
    let speaking = |l: &str| DirectorySearch {
        language: Some(l.to_owned()),
        ..any()
    };
    assert_eq!(
        search(speaking("EN")).await,
        sids(&[32]),
        "tags are compared normalised"
    );
    assert_eq!(search(speaking("ckb")).await, sids(&[31]));
    assert_eq!(search(speaking("a")).await, Vec::<String>::new(), "no prefix matching");
    assert_eq!(search(speaking("%")).await, Vec::<String>::new(), "not a tag");
    assert_eq!(search(speaking("ar,en")).await, Vec::<String>::new(), "not a tag");
    assert_eq!(
        search(DirectorySearch {
            accepting_only: true,
            ..any()
        })
        .await,
        sids(&[34, 31])
    );
    assert_eq!(
        search(DirectorySearch {
            category: Some(ServiceCategory::Health),
            governorate: Some(Governorate::Baghdad),
            language: Some("ar".to_owned()),
            accepting_only: true,
            include_retired: false,
        })
        .await,
        sids(&[34])
    );

    let page = models
        .search_services(&any(), &PageRequest::default())
        .await
        .expect("a page");
    let first = &page.items[0];
    assert_eq!(
        (
            first.org_name.as_str(),
            first.org_kind.as_str(),
            first.service.org_id.as_str()
        ),
        ("Synthetic Aid Partner", "national_ngo", aid.to_string().as_str())
    );
    assert_eq!(first.service.accepting, 0);

    // Organisations by name, one page at a time; one organisation with all its services.
    let orgs = all_pages(1, |p| {
        let models = &models;
        async move { models.organisations(&p).await }
    })
    .await;
    assert_eq!(
        orgs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        ["Synthetic Aid Partner", "Synthetic Clinic Partner"]
    );
    let (org, services) = models
        .organisation(aid)
        .await
        .expect("read")
        .expect("the organisation exists");
    assert_eq!(org.id, aid.to_string());
    let listed: Vec<(&str, i64, i64)> = services
        .iter()
        .map(|s| (s.name.as_str(), s.accepting, s.retired))
        .collect();
    assert_eq!(
        listed,
        [
            ("Synthetic counselling", 1, 1),
            ("Synthetic legal aid", 0, 0),
            ("Synthetic mobile clinic", 1, 0),
        ]
    );
    assert_eq!(models.organisation(id(99)).await.expect("read"), None);
}
on_both!(
    directory_scenario,
    the_directory_finds_services_by_category_place_language_and_availability
);

/// The ids of services `id(n)`.
fn sids(ns: &[u8]) -> Vec<String> {
    ns.iter().map(|n| id::<ServiceId>(*n).to_string()).collect()
}

/// Which services of the domain's directory a search should list.
type Keep = Box<dyn Fn(&wasl_domain::directory::Service) -> bool>;

async fn candidates_are_the_eligible_services_ranked_and_explained(db: TestDb) {
    let models = db.open().await;
    let mut world = World::new();
    let district =
        |d: &str| Location::new(Governorate::Ninawa, Some(District::parse(d).expect("district"))).expect("area");
    let with = |spec: wasl_domain::directory::ServiceSpec, sexes: Scope<Sex>, min_age: u8, max_age: u8| {
        wasl_domain::directory::ServiceSpec {
            eligibility: Eligibility {
                sexes,
                min_age,
                max_age,
            },
            ..spec
        }
    };
    let health = |title: &str, areas: Vec<Location>, tags: &[&str]| spec(title, ServiceCategory::Health, areas, tags);
    // One organisation per service, so each gets its own availability.
    let services = [
        // 41: the client's own district, her language, 3 free places: the best.
        (
            41,
            health("Synthetic district clinic", vec![district("mosul")], &["ar"]),
            Some(3),
        ),
        // 42: all of Ninawa, her language, capacity not published.
        (
            42,
            health(
                "Synthetic governorate clinic",
                vec![whole(Governorate::Ninawa)],
                &["ar-IQ"],
            ),
            None,
        ),
        // 43: all of Ninawa, another language only, 9 places.
        (
            43,
            health("Synthetic Kurdish clinic", vec![whole(Governorate::Ninawa)], &["ckb"]),
            Some(9),
        ),
        // 44: only another district of Ninawa.
        (
            44,
            health("Synthetic Sinjar clinic", vec![district("sinjar")], &["ar"]),
            Some(5),
        ),
        // 45: all of Ninawa, her language, no free places.
        (
            45,
            health("Synthetic full clinic", vec![whole(Governorate::Ninawa)], &["ar"]),
            Some(0),
        ),
        // 46: men only — not eligible.
        (
            46,
            with(
                health("Synthetic men's clinic", vec![whole(Governorate::Ninawa)], &["ar"]),
                Scope::Only([Sex::Male].into()),
                0,
                120,
            ),
            Some(4),
        ),
        // 47: children only — not eligible for a woman of 31.
        (
            47,
            with(
                health("Synthetic children's clinic", vec![whole(Governorate::Ninawa)], &["ar"]),
                Scope::Any,
                0,
                17,
            ),
            Some(4),
        ),
        // 48: legal, not health.
        (
            48,
            spec(
                "Synthetic legal aid",
                ServiceCategory::Legal,
                vec![whole(Governorate::Ninawa)],
                &["ar"],
            ),
            Some(4),
        ),
        // 49: Baghdad only.
        (
            49,
            health("Synthetic Baghdad clinic", vec![whole(Governorate::Baghdad)], &["ar"]),
            Some(4),
        ),
        // 50: her district, her language, but not accepting.
        (
            50,
            health("Synthetic closed clinic", vec![district("mosul")], &["ar"]),
            None,
        ),
    ];
    for (n, spec, capacity) in services {
        let org_id: OrgId = id(100 + n);
        let mut org = register(
            &mut world,
            org_id,
            &format!("Synthetic Partner {n}"),
            OrgKind::NationalNgo,
            vec![(n, spec)],
        );
        if n == 50 || capacity.is_some() {
            world.run(
                &mut org,
                org_id,
                OrganisationCommand::SetAvailability {
                    service_id: id(n),
                    accepting: n != 50,
                    capacity,
                },
                &admin(),
            );
        }
    }
    world.publish(&models).await;

    let need = Need {
        category: ServiceCategory::Health,
        sex: Sex::Female,
        age_group: Age::years(31).expect("age").group(),
        language: Language::parse("ar").expect("language"),
        location: district("mosul"),
    };
    let found = models.candidates(&need).await.expect("candidates");
    let ids: Vec<String> = found.iter().map(|c| c.listing.service.id.clone()).collect();
    let expected: Vec<String> = [41u8, 42, 45, 43, 44]
        .iter()
        .map(|n| id::<ServiceId>(*n).to_string())
        .collect();
    assert_eq!(ids, expected, "eligible services, best first");
    let best = &found[0];
    assert!(
        best.reasons.iter().any(|r| r.contains("client's district")),
        "{:?}",
        best.reasons
    );
    assert!(
        best.reasons.iter().any(|r| r.contains("3 free place")),
        "{:?}",
        best.reasons
    );
    assert!(best.cautions.is_empty(), "{:?}", best.cautions);
    let caution_of = |n: u8, text: &str| {
        let c = found
            .iter()
            .find(|c| c.listing.service.id == id::<ServiceId>(n).to_string())
            .expect("listed");
        assert!(c.cautions.iter().any(|x| x.contains(text)), "{n}: {:?}", c.cautions);
    };
    caution_of(42, "free places not published");
    caution_of(45, "no free places");
    caution_of(43, "language");
    caution_of(44, "district");

    // A man of the same age and place: the men's clinic joins, ranked as a governorate-wide one.
    let man = Need {
        sex: Sex::Male,
        ..need.clone()
    };
    let ids: Vec<String> = models
        .candidates(&man)
        .await
        .expect("candidates")
        .iter()
        .map(|c| c.listing.service.id.clone())
        .collect();
    assert!(ids.contains(&id::<ServiceId>(46).to_string()));
    // A child: the children's clinic joins.
    let child = Need {
        age_group: Age::years(9).expect("age").group(),
        ..need.clone()
    };
    let ids: Vec<String> = models
        .candidates(&child)
        .await
        .expect("candidates")
        .iter()
        .map(|c| c.listing.service.id.clone())
        .collect();
    assert!(ids.contains(&id::<ServiceId>(47).to_string()));
    // Nobody in Basrah offers anything.
    let far = Need {
        location: whole(Governorate::Basrah),
        ..need
    };
    assert!(models.candidates(&far).await.expect("candidates").is_empty());
}
on_both!(candidates, candidates_are_the_eligible_services_ranked_and_explained);

async fn directory_search_matches_the_generated_directory(db: TestDb) {
    let (models, g) = generated(&db, 150).await;
    // Every listed service with its organisation's name, in the search's order.
    let expected = |keep: &dyn Fn(&wasl_domain::directory::Service) -> bool| {
        let mut out: Vec<(String, String)> = g
            .organisations
            .values()
            .flat_map(|o| {
                o.services
                    .iter()
                    .filter(|(_, s)| keep(s))
                    .map(|(sid, _)| (o.name.as_str().to_owned(), sid.to_string()))
            })
            .collect();
        out.sort();
        out
    };
    let mut languages: Vec<String> = g
        .organisations
        .values()
        .flat_map(|o| {
            o.services
                .values()
                .flat_map(|s| s.spec.languages.iter().map(|l| l.as_str().to_owned()))
        })
        .collect();
    languages.sort();
    languages.dedup();
    let mut searches: Vec<(DirectorySearch, Keep)> = vec![
        (DirectorySearch::default(), Box::new(|s| !s.retired)),
        (
            DirectorySearch {
                include_retired: true,
                ..DirectorySearch::default()
            },
            Box::new(|_| true),
        ),
        (
            DirectorySearch {
                accepting_only: true,
                ..DirectorySearch::default()
            },
            Box::new(|s| s.accepting && !s.retired),
        ),
    ];
    for category in ServiceCategory::ALL.iter().copied() {
        searches.push((
            DirectorySearch {
                category: Some(category),
                ..DirectorySearch::default()
            },
            Box::new(move |s| s.spec.category == category && !s.retired),
        ));
    }
    for governorate in Governorate::ALL.iter().copied() {
        searches.push((
            DirectorySearch {
                governorate: Some(governorate),
                accepting_only: true,
                ..DirectorySearch::default()
            },
            Box::new(move |s| s.spec.areas.iter().any(|a| a.governorate() == governorate) && s.accepting && !s.retired),
        ));
    }
    for language in languages {
        let tag = language.clone();
        searches.push((
            DirectorySearch {
                language: Some(language),
                include_retired: true,
                ..DirectorySearch::default()
            },
            Box::new(move |s| s.spec.languages.iter().any(|l| l.as_str() == tag)),
        ));
    }
    let mut found = 0;
    for (search, keep) in &searches {
        let rows = all_pages(4, |p| {
            let models = &models;
            async move { models.search_services(search, &p).await }
        })
        .await;
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|l| (l.org_name.clone(), l.service.id.clone()))
            .collect();
        assert_eq!(got, expected(keep.as_ref()), "{search:?}");
        found += got.len();
    }
    assert!(found > 0);
    let orgs = all_pages(5, |p| {
        let models = &models;
        async move { models.organisations(&p).await }
    })
    .await;
    let mut expected_orgs: Vec<(String, String)> = g
        .organisations
        .values()
        .map(|o| (o.name.as_str().to_owned(), o.id.to_string()))
        .collect();
    expected_orgs.sort();
    assert_eq!(
        orgs.into_iter().map(|o| (o.name, o.id)).collect::<Vec<_>>(),
        expected_orgs
    );
}
on_both!(directory_generated, directory_search_matches_the_generated_directory);
