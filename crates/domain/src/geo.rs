//! Where a client lives and where a service works: the governorates of Iraq by their
//! ISO 3166-2:IQ code, with names in English, Arabic and Kurdish (Sorani), and their districts.
//!
//! ISO 3166-2:IQ lists 18 governorates. Halabja has been administered by the Kurdistan Region as a
//! governorate of its own since 2014 but has no ISO code; we follow the Kurdistan Region's
//! administration and give it the code `IQ-HAL` (three letters, so it cannot clash with a future
//! two-letter ISO code). Its districts are therefore not listed under As Sulaymaniyah.
//! District codes are stable snake_case slugs of the English names used by the humanitarian
//! community in Iraq; they are unique across the country.

use crate::error::ValidationError;
use std::fmt;

macro_rules! governorates {
    ($($variant:ident => $code:literal, $en:literal, $ar:literal, $ku:literal;)*) => {
        /// A governorate of Iraq.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Governorate { $(
            #[doc = $en]
            $variant,
        )* }

        impl Governorate {
            /// Every governorate, in code order.
            pub const ALL: &'static [Governorate] = &[$(Governorate::$variant),*];

            /// The ISO 3166-2:IQ code (`IQ-HAL` for Halabja, see the module docs).
            pub const fn code(self) -> &'static str {
                match self { $(Self::$variant => $code,)* }
            }

            /// The English name.
            pub const fn name_en(self) -> &'static str {
                match self { $(Self::$variant => $en,)* }
            }

            /// The Arabic name.
            pub const fn name_ar(self) -> &'static str {
                match self { $(Self::$variant => $ar,)* }
            }

            /// The Kurdish (Sorani) name.
            pub const fn name_ku(self) -> &'static str {
                match self { $(Self::$variant => $ku,)* }
            }

            /// Parses an ISO code such as `IQ-NI` (case-insensitive).
            pub fn parse(code: &str) -> Result<Self, ValidationError> {
                let upper = code.trim().to_ascii_uppercase();
                match upper.as_str() {
                    $($code => Ok(Self::$variant),)*
                    _ => Err(ValidationError::new("governorate", "is not a governorate code of Iraq")),
                }
            }
        }
    };
}

governorates! {
    Anbar => "IQ-AN", "Al Anbar", "الأنبار", "ئەنبار";
    Basrah => "IQ-BA", "Al Basrah", "البصرة", "بەسرە";
    Muthanna => "IQ-MU", "Al Muthanna", "المثنى", "موسەننا";
    Qadisiyah => "IQ-QA", "Al Qadisiyah", "القادسية", "قادسیە";
    Najaf => "IQ-NA", "An Najaf", "النجف", "نەجەف";
    Erbil => "IQ-AR", "Erbil", "أربيل", "هەولێر";
    Sulaymaniyah => "IQ-SU", "As Sulaymaniyah", "السليمانية", "سلێمانی";
    Babil => "IQ-BB", "Babil", "بابل", "بابل";
    Baghdad => "IQ-BG", "Baghdad", "بغداد", "بەغدا";
    Duhok => "IQ-DA", "Duhok", "دهوك", "دهۆک";
    DhiQar => "IQ-DQ", "Dhi Qar", "ذي قار", "زیقار";
    Diyala => "IQ-DI", "Diyala", "ديالى", "دیالە";
    Karbala => "IQ-KA", "Karbala", "كربلاء", "کەربەلا";
    Kirkuk => "IQ-KI", "Kirkuk", "كركوك", "کەرکووک";
    Maysan => "IQ-MA", "Maysan", "ميسان", "مەیسان";
    Ninawa => "IQ-NI", "Ninawa", "نينوى", "نەینەوا";
    SalahAlDin => "IQ-SD", "Salah ad Din", "صلاح الدين", "سەلاحەدین";
    Wasit => "IQ-WA", "Wasit", "واسط", "واست";
    Halabja => "IQ-HAL", "Halabja", "حلبجة", "هەڵەبجە";
}

impl fmt::Display for Governorate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code())
    }
}

/// A district (qadha) of a governorate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct District {
    code: &'static str,
    name_en: &'static str,
    governorate: Governorate,
}

impl District {
    /// Parses a district code such as `mosul` (case-insensitive).
    pub fn parse(code: &str) -> Result<Self, ValidationError> {
        let lower = code.trim().to_ascii_lowercase();
        DISTRICTS
            .iter()
            .find(|d| d.code == lower)
            .copied()
            .ok_or(ValidationError::new("district", "is not a district code of Iraq"))
    }

    /// The stable code.
    pub const fn code(&self) -> &'static str {
        self.code
    }

    /// The English name.
    pub const fn name_en(&self) -> &'static str {
        self.name_en
    }

    /// The governorate it belongs to.
    pub const fn governorate(&self) -> Governorate {
        self.governorate
    }

    /// The districts of one governorate.
    pub fn of(governorate: Governorate) -> impl Iterator<Item = District> {
        DISTRICTS.iter().copied().filter(move |d| d.governorate == governorate)
    }

    /// Every district.
    pub fn all() -> &'static [District] {
        DISTRICTS
    }
}

impl fmt::Display for District {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code)
    }
}

/// A governorate, optionally narrowed to one of its districts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    governorate: Governorate,
    district: Option<District>,
}

impl Location {
    /// A location; the district, when given, must lie in the governorate.
    pub fn new(governorate: Governorate, district: Option<District>) -> Result<Self, ValidationError> {
        match district {
            Some(d) if d.governorate != governorate => Err(ValidationError::new(
                "district",
                "does not lie in the given governorate",
            )),
            _ => Ok(Self { governorate, district }),
        }
    }

    /// The whole governorate.
    pub const fn governorate_only(governorate: Governorate) -> Self {
        Self {
            governorate,
            district: None,
        }
    }

    /// The governorate.
    pub const fn governorate(&self) -> Governorate {
        self.governorate
    }

    /// The district, if known.
    pub const fn district(&self) -> Option<District> {
        self.district
    }

    /// Whether a service working in `self` covers a client living at `client`: the same
    /// governorate, and the same district unless the service covers the whole governorate.
    pub fn covers(&self, client: &Location) -> bool {
        self.governorate == client.governorate
            && match (self.district, client.district) {
                (None, _) => true,
                (Some(mine), Some(theirs)) => mine == theirs,
                (Some(_), None) => false,
            }
    }
}

macro_rules! districts {
    ($($gov:ident: [$($code:literal => $name:literal),* $(,)?];)*) => {
        static DISTRICTS: &[District] = &[
            $($(District { code: $code, name_en: $name, governorate: Governorate::$gov },)*)*
        ];
    };
}

districts! {
    Anbar: ["al_qaim" => "Al-Qa'im", "ana" => "Ana", "fallujah" => "Fallujah", "haditha" => "Haditha",
        "heet" => "Heet", "ramadi" => "Ramadi", "rawa" => "Rawa", "rutba" => "Al-Rutba"];
    Babil: ["hilla" => "Al-Hilla", "mahawil" => "Al-Mahawil", "musayab" => "Al-Musayab",
        "hashimiya" => "Al-Hashimiya"];
    Baghdad: ["abu_ghraib" => "Abu Ghraib", "adhamiya" => "Adhamiya", "kadhimiya" => "Kadhimiya",
        "karkh" => "Karkh", "madain" => "Mada'in", "mahmudiya" => "Mahmudiya", "resafa" => "Resafa",
        "sadr_city" => "Sadr City (Al-Thawra)", "tarmiya" => "Tarmiya"];
    Basrah: ["abu_al_khaseeb" => "Abu Al-Khaseeb", "basrah" => "Al-Basrah", "midaina" => "Al-Midaina",
        "qurna" => "Al-Qurna", "zubair" => "Al-Zubair", "fao" => "Al-Fao", "shatt_al_arab" => "Shatt Al-Arab"];
    Duhok: ["amedi" => "Amedi", "duhok" => "Duhok", "sumel" => "Sumel", "zakho" => "Zakho"];
    Diyala: ["khalis" => "Al-Khalis", "muqdadiya" => "Al-Muqdadiya", "baladrooz" => "Baladrooz",
        "baquba" => "Ba'quba", "khanaqin" => "Khanaqin", "kifri" => "Kifri"];
    DhiQar: ["chibayish" => "Al-Chibayish", "nasiriya" => "Al-Nasiriya", "rifai" => "Al-Rifa'i",
        "shatra" => "Al-Shatra", "suq_al_shuyukh" => "Suq Al-Shuyukh"];
    Erbil: ["choman" => "Choman", "erbil" => "Erbil", "koya" => "Koya (Koisnjaq)", "makhmur" => "Makhmur",
        "mergasur" => "Mergasur", "shaqlawa" => "Shaqlawa", "soran" => "Soran"];
    Karbala: ["ain_al_tamur" => "Ain Al-Tamur", "hindiya" => "Al-Hindiya", "karbala" => "Karbala"];
    Kirkuk: ["daquq" => "Daquq", "dibis" => "Dibis", "hawija" => "Al-Hawija", "kirkuk" => "Kirkuk"];
    Maysan: ["ali_al_gharbi" => "Ali Al-Gharbi", "kahla" => "Al-Kahla", "maimouna" => "Al-Maimouna",
        "mejar_al_kabir" => "Al-Mejar Al-Kabir", "amara" => "Al-Amara", "qalat_saleh" => "Qal'at Saleh"];
    Muthanna: ["khidhir" => "Al-Khidhir", "rumaitha" => "Al-Rumaitha", "salman" => "Al-Salman",
        "samawa" => "Al-Samawa"];
    Najaf: ["manathera" => "Al-Manathera", "kufa" => "Al-Kufa", "najaf" => "Al-Najaf"];
    Ninawa: ["akre" => "Akre", "baaj" => "Al-Ba'aj", "hamdaniya" => "Al-Hamdaniya", "hatra" => "Hatra",
        "mosul" => "Mosul", "shekhan" => "Shekhan", "sinjar" => "Sinjar", "telafar" => "Telafar",
        "tilkaif" => "Tilkaif"];
    Qadisiyah: ["afaq" => "Afaq", "diwaniya" => "Al-Diwaniya", "hamza" => "Al-Hamza", "shamiya" => "Al-Shamiya"];
    SalahAlDin: ["daur" => "Al-Daur", "fares" => "Al-Fares", "shirqat" => "Al-Shirqat", "baiji" => "Baiji",
        "balad" => "Balad", "samarra" => "Samarra", "tikrit" => "Tikrit", "tuz_khurmatu" => "Tuz Khurmatu"];
    Sulaymaniyah: ["chamchamal" => "Chamchamal", "darbandikhan" => "Darbandikhan", "dokan" => "Dokan",
        "kalar" => "Kalar", "penjwin" => "Penjwin", "pshdar" => "Pshdar", "rania" => "Rania",
        "sharbazher" => "Sharbazher", "sulaymaniyah" => "Sulaymaniyah"];
    Wasit: ["hai" => "Al-Hai", "kut" => "Al-Kut", "numaniya" => "Al-Numaniya", "suwaira" => "Al-Suwaira",
        "badra" => "Badra"];
    Halabja: ["halabja" => "Halabja", "khurmal" => "Khurmal", "sirwan" => "Sirwan", "byara" => "Byara"];
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn iraq_has_eighteen_iso_governorates_and_halabja() {
        assert_eq!(Governorate::ALL.len(), 19);
        let iso = Governorate::ALL.iter().filter(|g| g.code().len() == 5).count();
        assert_eq!(iso, 18);
    }

    #[test]
    fn governorate_codes_parse_back_case_insensitively() {
        for g in Governorate::ALL {
            assert_eq!(Governorate::parse(&g.code().to_lowercase()).unwrap(), *g);
        }
        assert!(Governorate::parse("IQ-XX").is_err());
    }

    #[test]
    fn every_governorate_has_districts_with_unique_codes() {
        for g in Governorate::ALL {
            assert!(District::of(*g).count() >= 3, "{g} has too few districts");
        }
        let codes: HashSet<_> = District::all().iter().map(|d| d.code()).collect();
        assert_eq!(codes.len(), District::all().len());
        for d in District::all() {
            assert_eq!(District::parse(d.code()).unwrap(), *d);
        }
    }

    #[test]
    fn a_district_must_lie_in_its_governorate() {
        let mosul = District::parse("mosul").unwrap();
        assert!(Location::new(Governorate::Ninawa, Some(mosul)).is_ok());
        assert_eq!(
            Location::new(Governorate::Baghdad, Some(mosul)).unwrap_err().field,
            "district"
        );
    }

    #[test]
    fn a_whole_governorate_covers_its_districts_but_a_district_covers_only_itself() {
        let mosul = Location::new(Governorate::Ninawa, Some(District::parse("mosul").unwrap())).unwrap();
        let sinjar = Location::new(Governorate::Ninawa, Some(District::parse("sinjar").unwrap())).unwrap();
        let ninawa = Location::governorate_only(Governorate::Ninawa);
        assert!(ninawa.covers(&mosul));
        assert!(mosul.covers(&mosul));
        assert!(!mosul.covers(&sinjar));
        assert!(!mosul.covers(&ninawa));
        assert!(!Location::governorate_only(Governorate::Erbil).covers(&mosul));
    }
}
