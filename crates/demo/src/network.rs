//! The demo network as data: organisations, their services and their logins. Every name starts
//! with "Demo" and names no real organisation.

use wasl_domain::Role;
use wasl_domain::directory::OrgKind;

/// A service an organisation offers.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub(crate) struct ServiceDef {
    /// Its name in the directory.
    pub name: &'static str,
    pub category: &'static str,
    /// Where it works: governorate code and optional district code.
    pub areas: &'static [(&'static str, Option<&'static str>)],
    /// Languages it works in (BCP 47).
    pub languages: &'static [&'static str],
    /// Sexes served; empty = everyone.
    pub sexes: &'static [&'static str],
    /// Youngest age served.
    pub min_age: u8,
    /// Oldest age served.
    pub max_age: u8,
    /// Free places it publishes.
    pub capacity: u32,
    /// Closes intake (full) a few days before the end of the window.
    pub closes_near_end: bool,
}

/// Where a referring organisation's caseworkers work, and which clients they see.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReferringDef {
    /// The place in login names (`demo.caseworker.<place>`).
    pub place: &'static str,
    /// Whether it has a supervisor login too.
    pub supervisor: bool,
    /// Where its clients live, with weights: governorate, district.
    pub client_areas: &'static [(&'static str, &'static str, u32)],
    /// New cases per 100 days.
    pub cases_per_100_days: u32,
}

/// An organisation of the demo network.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub(crate) struct OrgDef {
    /// Short key, used in focal point login names and in derived ids.
    pub key: &'static str,
    /// Its name in the directory.
    pub name: &'static str,
    pub kind: OrgKind,
    pub services: &'static [ServiceDef],
    /// Whether (and where) it refers clients.
    pub referring: Option<ReferringDef>,
}

const fn svc(
    name: &'static str,
    category: &'static str,
    areas: &'static [(&'static str, Option<&'static str>)],
    languages: &'static [&'static str],
    capacity: u32,
) -> ServiceDef {
    ServiceDef {
        name,
        category,
        areas,
        languages,
        sexes: &[],
        min_age: 0,
        max_age: 120,
        capacity,
        closes_near_end: false,
    }
}

const fn for_whom(mut def: ServiceDef, sexes: &'static [&'static str], min_age: u8, max_age: u8) -> ServiceDef {
    def.sexes = sexes;
    def.min_age = min_age;
    def.max_age = max_age;
    def
}

const fn closing(mut def: ServiceDef) -> ServiceDef {
    def.closes_near_end = true;
    def
}

/// The partner that answers late: its focal point takes five times as long as the others to
/// acknowledge, decide and start, so it often misses its deadlines (the dashboards' partner
/// responsiveness shows it).
pub(crate) const LATE_PARTNER: &str = "health.duhok";

/// Governorates short of services: a referral of a client living there is declined for want of
/// capacity or because the service is not offered six times in ten (the dashboards' service
/// gaps show them).
pub(crate) const SHORT_OF_SERVICES: &[&str] = &["IQ-AN", "IQ-BA"];

/// The coordination hub: first in the list; holds the admin and coordinator logins.
pub(crate) const HUB: usize = 0;

/// The organisations, in registration order.
pub(crate) const ORGS: &[OrgDef] = &[
    OrgDef {
        key: "hub",
        name: "Demo Referral Coordination Hub",
        kind: OrgKind::Other,
        services: &[],
        referring: None,
    },
    OrgDef {
        key: "unhealth",
        name: "Demo UN Health Agency",
        kind: OrgKind::UnAgency,
        services: &[
            svc(
                "GBV clinical care (Mosul and Sinjar)",
                "health",
                &[("IQ-NI", Some("mosul")), ("IQ-NI", Some("sinjar"))],
                &["ar", "kmr"],
                12,
            ),
            svc(
                "Mobile primary health clinic (Anbar)",
                "health",
                &[("IQ-AN", Some("ramadi")), ("IQ-AN", Some("fallujah"))],
                &["ar"],
                30,
            ),
            svc(
                "Mental health consultations (Baghdad)",
                "psychosocial",
                &[("IQ-BG", None)],
                &["ar", "en"],
                15,
            ),
        ],
        referring: None,
    },
    OrgDef {
        key: "unmigration",
        name: "Demo UN Migration and Displacement Agency",
        kind: OrgKind::UnAgency,
        services: &[
            svc(
                "Emergency shelter kits and rental support (Erbil)",
                "shelter",
                &[("IQ-AR", None)],
                &["ar", "ckb", "kmr"],
                20,
            ),
            svc(
                "Multi-purpose cash assistance (Ninawa)",
                "cash",
                &[("IQ-NI", None)],
                &["ar", "kmr"],
                40,
            ),
        ],
        referring: Some(ReferringDef {
            place: "erbil",
            supervisor: true,
            client_areas: &[("IQ-AR", "erbil", 5), ("IQ-AR", "makhmur", 2), ("IQ-NI", "mosul", 2)],
            cases_per_100_days: 30,
        }),
    },
    OrgDef {
        key: "unchildren",
        name: "Demo UN Children's Agency",
        kind: OrgKind::UnAgency,
        services: &[
            for_whom(
                svc(
                    "Child protection case management (Duhok)",
                    "child_protection",
                    &[("IQ-DA", None)],
                    &["kmr", "ar"],
                    25,
                ),
                &[],
                0,
                17,
            ),
            for_whom(
                svc(
                    "Catch-up education (Ninawa)",
                    "education",
                    &[("IQ-NI", None)],
                    &["ar", "kmr"],
                    60,
                ),
                &[],
                6,
                17,
            ),
        ],
        referring: None,
    },
    OrgDef {
        key: "medrelief",
        name: "Demo International Medical Relief",
        kind: OrgKind::InternationalNgo,
        services: &[
            svc(
                "Psychological first aid and counselling (Kirkuk)",
                "psychosocial",
                &[("IQ-KI", None)],
                &["ar", "ckb", "tr"],
                18,
            ),
            for_whom(
                svc(
                    "Reproductive health clinic (Ramadi)",
                    "health",
                    &[("IQ-AN", Some("ramadi"))],
                    &["ar"],
                    20,
                ),
                &["female"],
                12,
                59,
            ),
        ],
        referring: Some(ReferringDef {
            place: "anbar",
            supervisor: false,
            client_areas: &[("IQ-AN", "ramadi", 3), ("IQ-AN", "fallujah", 3), ("IQ-KI", "kirkuk", 2)],
            cases_per_100_days: 22,
        }),
    },
    OrgDef {
        key: "protection",
        name: "Demo International Protection Council",
        kind: OrgKind::InternationalNgo,
        services: &[
            for_whom(
                svc(
                    "Livelihoods and vocational training (Duhok)",
                    "livelihoods",
                    &[("IQ-DA", None)],
                    &["kmr", "ar"],
                    30,
                ),
                &[],
                18,
                59,
            ),
            for_whom(
                svc(
                    "Women and girls safe space (Duhok)",
                    "psychosocial",
                    &[("IQ-DA", None)],
                    &["kmr", "ar"],
                    25,
                ),
                &["female"],
                12,
                120,
            ),
        ],
        referring: Some(ReferringDef {
            place: "duhok",
            supervisor: true,
            client_areas: &[("IQ-DA", "duhok", 3), ("IQ-DA", "zakho", 2), ("IQ-DA", "sumel", 2)],
            cases_per_100_days: 28,
        }),
    },
    OrgDef {
        key: "legalaid",
        name: "Demo Legal Aid Network (Erbil)",
        kind: OrgKind::NationalNgo,
        services: &[
            svc(
                "Legal counselling and representation (Erbil)",
                "legal",
                &[("IQ-AR", None)],
                &["ckb", "ar", "en"],
                15,
            ),
            svc(
                "Civil documentation support (Erbil and Makhmur)",
                "civil_documentation",
                &[("IQ-AR", Some("erbil")), ("IQ-AR", Some("makhmur"))],
                &["ar", "ckb"],
                25,
            ),
        ],
        referring: None,
    },
    OrgDef {
        key: "safehouse",
        name: "Demo Women's Safe House Association",
        kind: OrgKind::NationalNgo,
        services: &[
            for_whom(
                svc(
                    "Protection shelter for women (Baghdad)",
                    "shelter",
                    &[("IQ-BG", None)],
                    &["ar"],
                    6,
                ),
                &["female"],
                18,
                120,
            ),
            closing(for_whom(
                svc(
                    "Protection shelter for women (Basrah)",
                    "shelter",
                    &[("IQ-BA", None)],
                    &["ar"],
                    4,
                ),
                &["female"],
                18,
                120,
            )),
            for_whom(
                svc(
                    "GBV case management and counselling (Baghdad)",
                    "psychosocial",
                    &[("IQ-BG", None)],
                    &["ar"],
                    20,
                ),
                &["female"],
                12,
                120,
            ),
        ],
        referring: Some(ReferringDef {
            place: "baghdad",
            supervisor: false,
            client_areas: &[("IQ-BG", "karkh", 2), ("IQ-BG", "resafa", 2), ("IQ-BG", "sadr_city", 1)],
            cases_per_100_days: 16,
        }),
    },
    OrgDef {
        key: "ninewa",
        name: "Demo Ninewa Community Support",
        kind: OrgKind::NationalNgo,
        services: &[
            svc(
                "Community psychosocial support (Sinjar)",
                "psychosocial",
                &[("IQ-NI", Some("sinjar"))],
                &["kmr", "ar"],
                20,
            ),
            for_whom(
                svc(
                    "Small business grants (Mosul)",
                    "livelihoods",
                    &[("IQ-NI", Some("mosul"))],
                    &["ar"],
                    12,
                ),
                &[],
                18,
                59,
            ),
        ],
        referring: Some(ReferringDef {
            place: "mosul",
            supervisor: true,
            client_areas: &[("IQ-NI", "mosul", 4), ("IQ-NI", "sinjar", 3), ("IQ-NI", "telafar", 1)],
            cases_per_100_days: 32,
        }),
    },
    OrgDef {
        key: "basrah",
        name: "Demo Basrah Family Aid",
        kind: OrgKind::NationalNgo,
        services: &[
            svc(
                "Emergency cash for families (Basrah)",
                "cash",
                &[("IQ-BA", None)],
                &["ar"],
                30,
            ),
            svc("Legal aid clinic (Basrah)", "legal", &[("IQ-BA", None)], &["ar"], 10),
        ],
        referring: Some(ReferringDef {
            place: "basrah",
            supervisor: false,
            client_areas: &[("IQ-BA", "basrah", 3), ("IQ-BA", "zubair", 2)],
            cases_per_100_days: 18,
        }),
    },
    OrgDef {
        key: "health.duhok",
        name: "Demo Directorate of Health (Duhok)",
        kind: OrgKind::Government,
        services: &[
            svc(
                "Primary health care centres (Duhok and Zakho)",
                "health",
                &[("IQ-DA", Some("duhok")), ("IQ-DA", Some("zakho"))],
                &["kmr", "ar"],
                50,
            ),
            svc(
                "Hospital emergency referral (Duhok)",
                "health",
                &[("IQ-DA", None)],
                &["kmr", "ar", "en"],
                10,
            ),
        ],
        referring: None,
    },
    OrgDef {
        key: "social.anbar",
        name: "Demo Directorate of Labour and Social Affairs (Anbar)",
        kind: OrgKind::Government,
        services: &[
            svc(
                "Social protection enrolment (Anbar)",
                "cash",
                &[("IQ-AN", None)],
                &["ar"],
                100,
            ),
            svc(
                "Temporary accommodation (Fallujah)",
                "shelter",
                &[("IQ-AN", Some("fallujah"))],
                &["ar"],
                8,
            ),
        ],
        referring: None,
    },
    OrgDef {
        key: "civil.kirkuk",
        name: "Demo Civil Status Office (Kirkuk)",
        kind: OrgKind::Government,
        services: &[svc(
            "Civil documentation and ID renewal (Kirkuk)",
            "civil_documentation",
            &[("IQ-KI", None)],
            &["ar", "ckb", "tr"],
            40,
        )],
        referring: None,
    },
];

/// One login of the demo network.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub(crate) struct LoginDef {
    /// Login name.
    pub username: String,
    pub role: Role,
    /// Its organisation (index into [`ORGS`]).
    pub org: usize,
}

/// Every login, in a stable order: admin, coordinator, then per organisation caseworker,
/// supervisor and focal point.
pub(crate) fn logins() -> Vec<LoginDef> {
    let mut out = vec![
        LoginDef {
            username: "demo.admin".to_owned(),
            role: Role::Admin,
            org: HUB,
        },
        LoginDef {
            username: "demo.coordinator".to_owned(),
            role: Role::Coordinator,
            org: HUB,
        },
    ];
    for (i, org) in ORGS.iter().enumerate() {
        if let Some(referring) = org.referring {
            out.push(LoginDef {
                username: format!("demo.caseworker.{}", referring.place),
                role: Role::Caseworker,
                org: i,
            });
            if referring.supervisor {
                out.push(LoginDef {
                    username: format!("demo.supervisor.{}", referring.place),
                    role: Role::Supervisor,
                    org: i,
                });
            }
        }
        if !org.services.is_empty() {
            out.push(LoginDef {
                username: format!("demo.focal.{}", org.key),
                role: Role::FocalPoint,
                org: i,
            });
        }
    }
    out
}
