//! Client profiles: the one model of who Wasl's synthetic clients are, for the histories here and
//! the demo network.
//!
//! A profile is plausible for where the client lives, because dashboards and filters are judged
//! on it: returnees in Ninawa and Anbar, IDPs and Syrian refugees in the Kurdistan Region, host
//! community and migrants elsewhere; Kurmanji in Duhok and Sinjar, Sorani in Erbil and
//! Sulaymaniyah, Turkmen in Kirkuk; vulnerabilities that go with sex and age (GBV survivors are
//! women and girls, separated children are children). The rare values (sex `other`, an age known
//! only by its band, trafficking or detention survivors, stateless clients) still occur, so every
//! code is exercised.

use crate::rng::Rng;
use wasl_domain::client::{
    Age, AgeGroup, ClientProfile, Identifying, IdentifyingFacts, Language, Nationality, PopulationGroup, Sex,
    SurvivorCode, Vulnerability,
};
use wasl_domain::geo::{Governorate, Location};
use wasl_domain::ids::CaseId;

/// A client living at `home`, with `survivor_code`, as a caseworker states it: the identifying
/// facts in the clear, to be sealed before a command carries them.
pub fn client_profile(rng: &mut Rng, survivor_code: SurvivorCode, home: Location) -> ClientProfile {
    let sex = *rng.weighted(&[
        (Sex::Female, 60),
        (Sex::Male, 33),
        (Sex::Undisclosed, 5),
        (Sex::Other, 2),
    ]);
    let years = years(rng);
    let population_group = population_group(rng, home.governorate());
    let nationality = nationality(rng, population_group);
    let age = age(rng, years);
    ClientProfile {
        sex,
        age_group: age.group(),
        population_group,
        nationality,
        location: home,
        language: language(rng, home, nationality),
        identifying: Identifying::Clear(IdentifyingFacts {
            survivor_code,
            age_years: age.exact_years(),
            vulnerabilities: vulnerabilities(rng, sex, years, population_group),
        }),
    }
    .normalised()
}

/// `profile` with its clear identifying facts replaced by stand-ins sealed under `case`'s key
/// id: random bytes of the real ciphertexts' lengths, for histories and benchmarks whose sealed
/// values are never opened (what the domain requires of a command, without a vault).
pub fn with_stand_in_seals(rng: &mut Rng, case: CaseId, profile: ClientProfile) -> ClientProfile {
    crate::data::stand_in_seals(rng, &crate::data::case_key(case), profile)
}

/// An age in years: a fifth children, most adults under 60.
fn years(rng: &mut Rng) -> u8 {
    let years = match rng.below(100) {
        0..22 => rng.below(18),
        22..90 => rng.between(18, 59),
        _ => rng.between(60, 85),
    };
    u8::try_from(years).unwrap_or(30)
}

/// `years` as recorded: usually exactly, sometimes only the band (the client does not know or
/// does not say).
fn age(rng: &mut Rng, years: u8) -> Age {
    if rng.chance_per_mille(850) {
        Age::years(years).unwrap_or(Age::group_only(AgeGroup::of_years(years)))
    } else {
        Age::group_only(AgeGroup::of_years(years))
    }
}

/// A new age for a client whose profile is corrected.
pub(crate) fn corrected_age(rng: &mut Rng) -> Age {
    let years = years(rng);
    age(rng, years)
}

fn population_group(rng: &mut Rng, governorate: Governorate) -> PopulationGroup {
    use Governorate as G;
    use PopulationGroup as P;
    *rng.weighted(match governorate {
        // The Kurdistan Region hosts the camps: IDPs and most of Iraq's refugees.
        G::Duhok | G::Erbil | G::Sulaymaniyah | G::Halabja => &[
            (P::Idp, 45),
            (P::Refugee, 20),
            (P::Returnee, 10),
            (P::HostCommunity, 20),
            (P::Migrant, 5),
            (P::Other, 1),
        ],
        // Areas retaken from ISIS: people coming home.
        G::Ninawa | G::Anbar | G::SalahAlDin | G::Diyala => {
            &[(P::Returnee, 50), (P::Idp, 30), (P::HostCommunity, 20), (P::Other, 1)]
        }
        G::Kirkuk => &[(P::Idp, 40), (P::Returnee, 35), (P::HostCommunity, 25), (P::Other, 1)],
        _ => &[
            (P::HostCommunity, 40),
            (P::Idp, 25),
            (P::Returnee, 20),
            (P::Migrant, 15),
            (P::Other, 1),
        ],
    })
}

fn nationality(rng: &mut Rng, group: PopulationGroup) -> Nationality {
    let code = match group {
        PopulationGroup::Refugee => *rng.weighted(&[("SY", 17), ("IR", 2), ("TR", 1)]),
        PopulationGroup::Migrant => *rng.weighted(&[("IR", 3), ("TR", 1), ("SY", 2), ("XX", 1)]),
        // `XX`: stateless or unknown.
        PopulationGroup::Other => *rng.weighted(&[("IQ", 3), ("XX", 1)]),
        _ => "IQ",
    };
    Nationality::parse(code).unwrap_or_else(|_| unreachable!("two ASCII letters are a nationality"))
}

/// The language a client living at `home` with `nationality` prefers.
pub(crate) fn language(rng: &mut Rng, home: Location, nationality: Nationality) -> Language {
    use Governorate as G;
    let district = home.district().map(|d| d.code());
    let tag = match (nationality.as_str(), home.governorate(), district) {
        ("SY", _, _) => *rng.weighted(&[("kmr", 1), ("ar", 1)]),
        ("IR", _, _) => "fa",
        ("TR", _, _) => "tr",
        ("XX", _, _) => *rng.weighted(&[("ar", 3), ("en", 1)]),
        (_, _, Some("sinjar")) => *rng.weighted(&[("kmr", 7), ("ar", 3)]),
        (_, G::Duhok, _) => *rng.weighted(&[("kmr", 6), ("ar", 4)]),
        (_, G::Erbil, _) => *rng.weighted(&[("ckb", 4), ("ar", 5), ("kmr", 1)]),
        (_, G::Sulaymaniyah | G::Halabja, _) => *rng.weighted(&[("ckb", 8), ("ar", 2)]),
        (_, G::Kirkuk, _) => *rng.weighted(&[("ar", 5), ("ckb", 3), ("tr", 2)]),
        _ => "ar",
    };
    Language::parse(tag).unwrap_or_else(|_| unreachable!("the tags here are BCP 47"))
}

fn vulnerabilities(rng: &mut Rng, sex: Sex, years: u8, group: PopulationGroup) -> Vec<Vulnerability> {
    use Vulnerability as V;
    let female = sex == Sex::Female;
    let adult_woman = female && years >= 18;
    let child = years < 18;
    let chances = [
        (V::GbvSurvivor, female && years >= 12, 400),
        (V::FemaleHeadedHousehold, adult_woman, 250),
        (V::PregnantOrLactating, adult_woman && years < 45, 100),
        (V::SeparatedChild, child, 150),
        (V::UnaccompaniedChild, child, 30),
        (V::OlderPersonAtRisk, years >= 60, 500),
        (V::PerceivedAffiliation, group == PopulationGroup::Returnee, 50),
        (V::MissingDocumentation, true, 250),
        (V::ChronicIllness, true, 100),
        (V::Disability, true, 80),
        (V::TraffickingSurvivor, true, 15),
        (V::DetentionSurvivor, true, 15),
        (V::Other, true, 15),
    ];
    chances
        .into_iter()
        .filter(|(_, applies, per_mille)| *applies && rng.chance_per_mille(*per_mille))
        .map(|(v, _, _)| v)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasl_domain::geo::District;

    fn facts(p: &ClientProfile) -> &IdentifyingFacts {
        match &p.identifying {
            Identifying::Clear(facts) => facts,
            Identifying::Sealed(_) => panic!("a stated profile is in the clear"),
        }
    }

    fn code(n: u32) -> SurvivorCode {
        SurvivorCode::parse(&format!("SYN-{n:06}")).expect("a survivor code")
    }

    #[test]
    fn a_profile_keeps_its_code_and_home_and_is_normalised() {
        let mut rng = Rng::new(1);
        let home = Location::new(Governorate::Ninawa, District::parse("sinjar").ok()).expect("sinjar is in Ninawa");
        for n in 0..500 {
            let profile = client_profile(&mut rng, code(n), home);
            assert_eq!(facts(&profile).survivor_code, code(n));
            assert_eq!(profile.location, home);
            assert_eq!(profile, profile.clone().normalised());
        }
    }

    #[test]
    fn vulnerabilities_go_with_sex_and_age() {
        let mut rng = Rng::new(2);
        let home = Location::governorate_only(Governorate::Duhok);
        for n in 0..3_000 {
            let p = client_profile(&mut rng, code(n), home);
            let (_, oldest) = p.age_group.bounds();
            let has = |v| facts(&p).vulnerabilities.contains(&v);
            if has(Vulnerability::GbvSurvivor) || has(Vulnerability::PregnantOrLactating) {
                assert_eq!(p.sex, Sex::Female);
            }
            if has(Vulnerability::SeparatedChild) || has(Vulnerability::UnaccompaniedChild) {
                assert!(p.age_group.is_child());
            }
            if has(Vulnerability::OlderPersonAtRisk) {
                assert!(oldest > 59);
            }
        }
    }

    #[test]
    fn every_sex_group_and_vulnerability_occurs_somewhere() {
        let mut rng = Rng::new(3);
        let mut profiles = Vec::new();
        for (n, governorate) in Governorate::ALL.iter().cycle().take(20_000).enumerate() {
            let n = u32::try_from(n).expect("small");
            profiles.push(client_profile(
                &mut rng,
                code(n),
                Location::governorate_only(*governorate),
            ));
        }
        for sex in Sex::ALL {
            assert!(profiles.iter().any(|p| p.sex == *sex), "no {sex:?}");
        }
        for group in PopulationGroup::ALL {
            assert!(profiles.iter().any(|p| p.population_group == *group), "no {group:?}");
        }
        for v in Vulnerability::ALL {
            assert!(
                profiles.iter().any(|p| facts(p).vulnerabilities.contains(v)),
                "no {v:?}"
            );
        }
        assert!(profiles.iter().any(|p| facts(p).age_years.is_none()));
    }
}
