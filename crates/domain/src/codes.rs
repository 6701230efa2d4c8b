//! Closed vocabularies with stable snake_case codes. The codes are what the API speaks and what
//! dashboards group by; the protobuf enums mirror them one to one.

/// Declares a fieldless enum with a stable code per variant, `ALL`, `code()` and `parse()`.
macro_rules! code_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident => $code:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant,)* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The stable snake_case code.
            pub const fn code(self) -> &'static str {
                match self { $(Self::$variant => $code,)* }
            }

            /// Parses a code.
            pub fn parse(code: &str) -> Result<Self, $crate::error::ValidationError> {
                match code {
                    $($code => Ok(Self::$variant),)*
                    _ => Err($crate::error::ValidationError::new($field, "is not a known code")),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.code())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::ValidationError;
            fn from_str(code: &str) -> Result<Self, Self::Err> {
                Self::parse(code)
            }
        }
    };
}

pub(crate) use code_enum;

#[cfg(test)]
mod tests {
    code_enum!(
        /// Test vocabulary.
        Colour, "colour" {
            /// Red.
            Red => "red",
            /// Dark blue.
            DarkBlue => "dark_blue",
        }
    );

    #[test]
    fn codes_round_trip_and_unknown_codes_are_refused() {
        for c in Colour::ALL {
            assert_eq!(Colour::parse(c.code()).unwrap(), *c);
        }
        assert_eq!(Colour::DarkBlue.to_string(), "dark_blue");
        assert_eq!(Colour::parse("green").unwrap_err().field, "colour");
    }
}
