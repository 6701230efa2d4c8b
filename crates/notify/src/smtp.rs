//! Email over SMTP with `lettre`: one connection per message (a few mails a minute do not need
//! a pool), TLS by rustls with the system's root certificates.
//!
//! The server is one URL, in lettre's form with Wasl's safer default:
//!
//! | URL | connection |
//! |---|---|
//! | `smtps://user:pass@host` (port 465) | TLS from the first byte |
//! | `smtp://user:pass@host:587` | STARTTLS, required: the mail is not sent if the server does not offer it |
//! | `smtp://host:25?tls=opportunistic` | STARTTLS if offered (open to a man in the middle) |
//! | `smtp://host:25?tls=none` | plain text, for a relay on the same machine or network |
//! | `smtp://127.0.0.1:2525` | plain text: a loopback server without `tls=` (a local relay, a test sink) |
//!
//! A path sets the name sent with `EHLO` (`smtp://host/wasl.example.org`), else the domain of
//! the sender's address. Credentials in the URL are a secret: the URL's `Debug` and `Display`
//! hide the password.

use crate::error::{DeliveryError, NotifyError};
use crate::notifier::{Delivery, Notification, Notifier};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, Message};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (`smtps://`).
    Wrapper,
    /// STARTTLS, required.
    Required,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// None.
    Plain,
}

/// The SMTP server's URL (see the module's documentation). Its password never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    /// What lettre is given: the URL with the TLS choice made explicit.
    lettre: String,
    /// The URL as shown: the password replaced.
    shown: String,
    tls: TlsMode,
    host: String,
    has_ehlo_name: bool,
}

impl SmtpUrl {
    /// How the connection is protected.
    pub fn tls(&self) -> TlsMode {
        self.tls
    }

    /// The server's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SmtpUrl").field(&self.shown).finish()
    }
}

impl std::fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl FromStr for SmtpUrl {
    type Err = NotifyError;

    fn from_str(text: &str) -> Result<Self, NotifyError> {
        let bad = |why: &str| NotifyError::Config(format!("the SMTP URL {why} (see docs/notifications.md)"));
        let text = text.trim();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("must start with smtp:// or smtps://"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "smtp" && scheme != "smtps" {
            return Err(bad("must start with smtp:// or smtps://"));
        }
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let host = if let Some(v6) = hostport.strip_prefix('[') {
            v6.split_once(']').map(|(h, _)| h).unwrap_or_default()
        } else {
            hostport.split(':').next().unwrap_or_default()
        };
        if host.is_empty() {
            return Err(bad("names no host"));
        }
        let mut tls_param = None;
        let mut others = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("tls", value)) => tls_param = Some(value.to_ascii_lowercase()),
                _ => others.push(pair),
            }
        }
        let loopback =
            host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let tls = match (scheme.as_str(), tls_param.as_deref()) {
            ("smtps", None) => TlsMode::Wrapper,
            ("smtps", Some(_)) => return Err(bad("takes no tls= with smtps:// (TLS from the start)")),
            (_, Some("required")) => TlsMode::Required,
            (_, Some("opportunistic")) => TlsMode::Opportunistic,
            (_, Some("none")) => TlsMode::Plain,
            (_, Some(_)) => return Err(bad("has a tls= that is not required, opportunistic or none")),
            // Mail that leaves the machine is encrypted unless the operator says otherwise.
            (_, None) if loopback => TlsMode::Plain,
            (_, None) => TlsMode::Required,
        };
        let lettre_tls = match tls {
            TlsMode::Required => Some("tls=required"),
            TlsMode::Opportunistic => Some("tls=opportunistic"),
            // lettre's `smtp://` without `tls=` is plain; `smtps://` is TLS.
            TlsMode::Plain | TlsMode::Wrapper => None,
        };
        let query_of = |parts: &[&str]| {
            if parts.is_empty() {
                String::new()
            } else {
                format!("?{}", parts.join("&"))
            }
        };
        let mut lettre_query = others.clone();
        lettre_query.extend(lettre_tls);
        let path_part = if path.is_empty() {
            String::new()
        } else {
            format!("/{path}")
        };
        let lettre = format!("{scheme}://{authority}{path_part}{}", query_of(&lettre_query));
        let shown_userinfo = userinfo.map(|u| match u.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{u}@"),
        });
        let mut shown_query = others;
        let shown_tls = tls_param.map(|t| format!("tls={t}"));
        shown_query.extend(shown_tls.as_deref());
        let shown = format!(
            "{scheme}://{}{hostport}{path_part}{}",
            shown_userinfo.unwrap_or_default(),
            query_of(&shown_query)
        );
        // Checked now, so that a bad URL stops the start rather than every send.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(&lettre).map_err(|_| bad("cannot be used"))?;
        Ok(Self {
            lettre,
            shown,
            tls,
            host: host.to_owned(),
            has_ehlo_name: !path.trim_matches('/').is_empty(),
        })
    }
}

/// The SMTP notifier's settings.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The server.
    pub url: SmtpUrl,
    /// The sender: `wasl@example.org` or `Wasl <wasl@example.org>`.
    pub from: String,
    /// Most time for one message, connection to `QUIT`.
    pub timeout: Duration,
}

/// Delivers notifications as plain-text email, one message per recipient (so that nobody sees
/// who else was told).
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpNotifier").finish_non_exhaustive()
    }
}

impl SmtpNotifier {
    /// A notifier for `config`; fails on a sender that is not an address.
    pub fn new(config: &SmtpConfig) -> Result<Self, NotifyError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| NotifyError::Config("the sender (--smtp-from) is not an email address".to_owned()))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.url.lettre)
            .map_err(|_| NotifyError::Config(format!("the SMTP URL {} cannot be used", config.url)))?
            .timeout(Some(config.timeout));
        if !config.url.has_ehlo_name {
            // Without the `hostname` feature lettre would greet as [127.0.0.1], which servers
            // that check EHLO names refuse; the sender's domain is Wasl's own name here.
            builder = builder.hello_name(ClientId::Domain(from.email.domain().to_owned()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// The message for `notification`.
    pub fn message(&self, notification: &Notification) -> Result<Message, DeliveryError> {
        let to: Address = notification
            .to
            .address()
            .parse()
            .map_err(|_| DeliveryError::Permanent {
                kind: "address",
                code: None,
            })?;
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(notification.subject())
            .message_id(Some(notification.id.clone()))
            .header(ContentType::TEXT_PLAIN)
            // RFC 3834: no out-of-office replies to a machine's message.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .body(body(notification.body()))
            .map_err(|_| DeliveryError::Permanent {
                kind: "message",
                code: None,
            })
    }
}

/// The body as `7bit` when it is: ASCII, CRLF line ends, no line over RFC 5322's 998
/// characters. Unencoded, the link stays whole for clients that make it clickable (lettre's own
/// choice, quoted-printable, breaks lines at 76 characters), and the text can be checked byte for
/// byte. Anything else is left to lettre to encode.
fn body(text: String) -> Body {
    let clean = text.is_ascii()
        && !text.contains('\0')
        && text.ends_with("\r\n")
        && text
            .split("\r\n")
            .all(|line| line.len() <= 998 && !line.contains(['\r', '\n']));
    if clean {
        Body::dangerous_pre_encoded(text.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text)
    }
}

impl Notifier for SmtpNotifier {
    fn deliver<'a>(&'a self, notification: &'a Notification) -> Delivery<'a> {
        Box::pin(async move {
            let message = self.message(notification)?;
            self.transport.send(message).await.map(|_| ()).map_err(classify)
        })
    }
}

/// lettre's error as a kind and a code; its text (which may quote the address) is dropped.
fn classify(err: lettre::transport::smtp::Error) -> DeliveryError {
    let code = err.status().map(u16::from);
    if err.is_permanent() {
        DeliveryError::Permanent { kind: "reply", code }
    } else if err.is_transient() {
        DeliveryError::Transient { kind: "reply", code }
    } else if err.is_timeout() {
        DeliveryError::Transient { kind: "timeout", code }
    } else if err.is_tls() {
        DeliveryError::Transient { kind: "tls", code }
    } else if err.is_client() {
        DeliveryError::Permanent { kind: "client", code }
    } else {
        // Connection refused or lost, an unreadable reply: the server may be back soon.
        DeliveryError::Transient {
            kind: "connection",
            code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> SmtpUrl {
        text.parse().expect("a usable URL")
    }

    #[test]
    fn smtp_to_another_machine_requires_starttls_unless_told() {
        assert_eq!(url("smtp://mail.example.org:587").tls(), TlsMode::Required);
        assert_eq!(url("smtp://mail.example.org:25?tls=none").tls(), TlsMode::Plain);
        assert_eq!(
            url("smtp://mail.example.org?tls=opportunistic").tls(),
            TlsMode::Opportunistic
        );
        assert_eq!(url("smtps://mail.example.org").tls(), TlsMode::Wrapper);
    }

    #[test]
    fn loopback_without_tls_is_plain() {
        assert_eq!(url("smtp://127.0.0.1:2525").tls(), TlsMode::Plain);
        assert_eq!(url("smtp://localhost:2525").tls(), TlsMode::Plain);
        assert_eq!(url("smtp://[::1]:2525").tls(), TlsMode::Plain);
        assert_eq!(url("smtp://127.0.0.1:2525?tls=required").tls(), TlsMode::Required);
    }

    #[test]
    fn the_password_never_prints() {
        let u = url("smtps://wasl:s3cret-pw@mail.example.org:465");
        assert_eq!(u.to_string(), "smtps://wasl:***@mail.example.org:465");
        assert!(!format!("{u:?}").contains("s3cret-pw"));
        assert_eq!(u.host(), "mail.example.org");
    }

    #[test]
    fn what_is_not_an_smtp_url_is_refused() {
        for bad in [
            "http://mail.example.org",
            "mail.example.org:25",
            "smtp://",
            "smtp://host?tls=maybe",
            "smtps://host?tls=none",
        ] {
            assert!(matches!(bad.parse::<SmtpUrl>(), Err(NotifyError::Config(_))), "{bad}");
        }
    }

    #[test]
    fn a_clean_body_is_sent_as_it_is_and_anything_else_encoded() {
        let long = format!("{}\r\n", "x".repeat(200));
        let kept = body(long.clone());
        assert_eq!(kept.encoding(), ContentTransferEncoding::SevenBit);
        assert_eq!(kept.into_vec(), long.into_bytes());
        assert_ne!(body("é\r\n".to_owned()).encoding(), ContentTransferEncoding::SevenBit);
        // lettre makes the line ends CRLF.
        assert_eq!(body("bare\nline\r\n".to_owned()).into_vec(), b"bare\r\nline\r\n");
    }

    #[test]
    fn the_default_sender_of_wasl_up_is_an_address() {
        let config = SmtpConfig {
            url: url("smtp://127.0.0.1:2525"),
            from: "Wasl <wasl@localhost>".to_owned(),
            timeout: Duration::from_secs(5),
        };
        assert!(SmtpNotifier::new(&config).is_ok());
    }

    #[test]
    fn a_sender_that_is_no_address_is_refused() {
        let config = SmtpConfig {
            url: url("smtp://127.0.0.1:2525"),
            from: "not an address".to_owned(),
            timeout: Duration::from_secs(5),
        };
        assert!(matches!(SmtpNotifier::new(&config), Err(NotifyError::Config(_))));
    }
}
