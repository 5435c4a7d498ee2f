//! Macros for protocol enums that are strings on the wire: `string_enum!` for
//! ones that may grow new values (known values become variants, anything else
//! is kept in `Other`), `wire_names!` for the list of a closed enum's names.

/// Declares an enum serialised as a string, with an `Other(String)` catch-all so
/// that a value Telnyx adds later is kept instead of failing the whole event.
macro_rules! string_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version of ivrx does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(s) => s.as_str(),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $($wire => Self::$variant,)+
                    other => Self::Other(other.to_string()),
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(s.parse().unwrap_or_else(|never| match never {}))
            }
        }
    };
}

pub(crate) use string_enum;

/// The wire names of every value of a fieldless protocol enum that has
/// `ALL` and a `const fn name`, in `ALL`'s order, as a constant slice.
macro_rules! wire_names {
    ($ty:ty) => {
        &{
            let mut names = [""; <$ty>::ALL.len()];
            let mut i = 0;
            while i < names.len() {
                names[i] = <$ty>::ALL[i].name();
                i += 1;
            }
            names
        }
    };
}

pub(crate) use wire_names;
