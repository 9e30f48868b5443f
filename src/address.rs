//! The VIP addresses on the node: a VIP is put on an interface (`lo` by
//! default) while it is announced or draining, so the kernel accepts its
//! traffic, and taken off after withdrawal. Over rtnetlink (the tokio
//! netlink client); the connection lives in the network namespace of the
//! thread that calls [`Addresses::new`].
//!
//! # Our mark
//!
//! anyvip touches only the addresses it added itself (design invariant 7),
//! and must recognise them after a crash. Every address it adds carries:
//!
//! - `IFA_PROTO` = [`ADDR_PROTO`] (the address's "protocol", which Linux
//!   keeps and reports since 6.3, both families; an iproute2 that knows
//!   IFA_PROTO shows it in `ip address` as `proto 97`, Debian 12's 6.1
//!   does not);
//! - for IPv4, also the label `<interface>:anyvip` (every kernel; shown by
//!   `ip -4 address` and old tools), unless the interface name is too long
//!   for a label (15 bytes).
//!
//! An address with either mark is ours: [`Addresses::owned`] lists them and
//! [`Addresses::reconcile`] removes the ones no longer wanted. Any other
//! address, even one equal to a VIP (added by hand, by keepalived, ...), is
//! never changed or removed. Kernels older than 6.3 silently drop
//! `IFA_PROTO`: there an IPv6 VIP cannot be marked, and
//! [`Ensured::Added`] says so (`marked: false`) so the daemon can warn.
//!
//! # No ARP or ND for a VIP
//!
//! Linux answers ARP for every local address on every interface by default,
//! so a VIP on `lo` would be answered on the uplinks: the split brain the
//! design rules out. Before it adds an IPv4 address, [`Addresses::ensure`]
//! calls [`suppress_arp`], which raises (never lowers):
//!
//! - `net.ipv4.conf.all.arp_ignore` to 1 (answer only for addresses of the
//!   interface the request came in on; the kernel uses the maximum of `all`
//!   and the interface's value, and 1, 2 and 8 all leave a VIP on `lo`
//!   unanswered), and `arp_ignore` of `default` and of any interface set to
//!   3-7 (which would answer again) to 1;
//! - `net.ipv4.conf.all.arp_announce` to 2 (never use a VIP as the sender
//!   address of our own ARP requests, which would teach neighbours the VIP).
//!
//! These are node-wide (the uplinks carrying VIP traffic are not known in
//! advance) and are left in place at stop; they are what kube-proxy's IPVS
//! mode sets too. IPv6 needs nothing: Linux answers a neighbour solicitation
//! only for addresses of the interface it came in on, and picks the source
//! of its own solicitations among the outgoing interface's addresses.

use std::fmt;
use std::net::IpAddr;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol,
};
use rtnetlink::packet_route::AddressFamily;
use tokio::task::JoinHandle;

use crate::steer::{SysctlChange, SysctlError};

/// The interface VIPs go on unless configured otherwise.
pub const DEFAULT_INTERFACE: &str = "lo";

/// Our `IFA_PROTO` value: 97, ASCII `a` for anyvip. The kernel's own
/// values are 1-3 (`kernel_lo`, `kernel_ra`, `kernel_ll`); an operator can
/// name ours with a line `97 anyvip` in `/etc/iproute2/rt_addrprotos`.
pub const ADDR_PROTO: u8 = 97;

/// The IPv4 label suffix: `lo:anyvip`.
pub const LABEL_SUFFIX: &str = ":anyvip";

/// Linux's limit for an interface name or address label, without the NUL.
const MAX_LABEL_LEN: usize = 15;

#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("interface {0:?} not found")]
    NoInterface(String),
    #[error("{op} {what}: {source}")]
    Netlink {
        op: &'static str,
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("the kernel would answer ARP for VIPs: {0}")]
    Arp(#[from] SysctlError),
}

/// What [`Addresses::ensure`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// Added now. `marked` is false if the kernel dropped our mark (IPv6
    /// on Linux < 6.3): after a crash it will not be recognised as ours.
    Added { marked: bool },
    /// Already there with our mark (adopted: not added again).
    Present,
    /// Already there without our mark (someone else's): left alone, and it
    /// will not be removed either.
    Foreign,
}

/// What [`Addresses::remove`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Removed,
    Absent,
    /// There without our mark: left alone.
    Foreign,
}

/// What [`Addresses::reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Wanted and missing: added.
    pub added: Vec<IpNet>,
    /// Wanted and already ours (left by an earlier run): kept.
    pub adopted: Vec<IpNet>,
    /// Wanted but present without our mark: left alone.
    pub foreign: Vec<IpNet>,
    /// Ours but not wanted (here or on another interface): removed.
    pub removed: Vec<IpNet>,
    /// Sysctls raised to keep the kernel from answering ARP for VIPs.
    pub sysctls: Vec<SysctlChange>,
}

/// One address as the kernel reported it.
#[derive(Debug, Clone)]
struct Current {
    prefix: IpNet,
    index: u32,
    ours: bool,
    message: AddressMessage,
}

/// Address changes in this network namespace, as the kernel announces them
/// (rtnetlink groups `RTMGRP_IPV4_IFADDR` and `RTMGRP_IPV6_IFADDR`): each item
/// says "an address was added or removed somewhere", nothing more, so the
/// caller looks again. Ends if the netlink socket fails. Needs a tokio
/// runtime.
pub struct AddressEvents {
    messages: futures_util::stream::BoxStream<'static, ()>,
    connection: JoinHandle<()>,
}

impl Drop for AddressEvents {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl AddressEvents {
    pub fn subscribe() -> Result<AddressEvents, AddressError> {
        use rtnetlink::sys::AsyncSocket;
        let (mut connection, _handle, messages) =
            rtnetlink::new_connection().map_err(AddressError::Socket)?;
        let groups =
            rtnetlink::constants::RTMGRP_IPV4_IFADDR | rtnetlink::constants::RTMGRP_IPV6_IFADDR;
        connection
            .socket_mut()
            .socket_mut()
            .bind(&rtnetlink::sys::SocketAddr::new(0, groups))
            .map_err(AddressError::Socket)?;
        use futures_util::StreamExt;
        Ok(AddressEvents {
            messages: messages.map(|_| ()).boxed(),
            connection: tokio::spawn(connection),
        })
    }

    /// The next change; `None` once the socket is gone.
    pub async fn next(&mut self) -> Option<()> {
        use futures_util::StreamExt;
        self.messages.next().await
    }
}

/// The VIP addresses on one interface.
pub struct Addresses {
    interface: String,
    handle: rtnetlink::Handle,
    connection: JoinHandle<()>,
}

impl Drop for Addresses {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl fmt::Debug for Addresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Addresses")
            .field("interface", &self.interface)
            .finish_non_exhaustive()
    }
}

impl Addresses {
    /// A netlink connection for `interface` (which must exist), in the
    /// calling thread's network namespace. Needs a tokio runtime.
    pub async fn new(interface: &str) -> Result<Addresses, AddressError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(AddressError::Socket)?;
        let connection = tokio::spawn(connection);
        let addresses = Addresses {
            interface: interface.to_string(),
            handle,
            connection,
        };
        addresses.index().await?;
        Ok(addresses)
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Put `prefix` on the interface, with our mark, unless it is there.
    /// IPv6 addresses are added without duplicate address detection
    /// (`nodad`: a VIP is on every node by design). An IPv4 address is added
    /// only once [`suppress_arp`] succeeded.
    pub async fn ensure(&self, prefix: IpNet) -> Result<Ensured, AddressError> {
        let index = self.index().await?;
        if let Some(found) = self.find(index, prefix).await? {
            return Ok(if found.ours {
                Ensured::Present
            } else {
                Ensured::Foreign
            });
        }
        if prefix.addr().is_ipv4() {
            suppress_arp()?;
        }
        self.add(index, prefix).await?;
        let marked = self
            .find(index, prefix)
            .await?
            .is_some_and(|found| found.ours);
        Ok(Ensured::Added { marked })
    }

    /// Take `prefix` off the interface if it carries our mark.
    pub async fn remove(&self, prefix: IpNet) -> Result<Removed, AddressError> {
        let index = self.index().await?;
        match self.find(index, prefix).await? {
            None => Ok(Removed::Absent),
            Some(found) if !found.ours => Ok(Removed::Foreign),
            Some(found) => {
                self.delete(found).await?;
                Ok(Removed::Removed)
            }
        }
    }

    /// The addresses on the interface that carry our mark.
    pub async fn owned(&self) -> Result<Vec<IpNet>, AddressError> {
        let index = self.index().await?;
        Ok(self
            .dump()
            .await?
            .into_iter()
            .filter(|a| a.ours && a.index == index)
            .map(|a| a.prefix)
            .collect())
    }

    /// Make the interface carry exactly `wanted` of ours: adopt those an
    /// earlier run left, add the missing ones, remove our stale ones (on any
    /// interface: the configured interface may have changed since). Addresses
    /// without our mark are never touched.
    pub async fn reconcile(&self, wanted: &[IpNet]) -> Result<Reconciled, AddressError> {
        let index = self.index().await?;
        let current = self.dump().await?;
        let mut done = Reconciled::default();
        for stale in current
            .iter()
            .filter(|a| a.ours && !(a.index == index && wanted.contains(&a.prefix)))
        {
            self.delete(stale.clone()).await?;
            done.removed.push(stale.prefix);
        }
        for &prefix in wanted {
            if done.added.contains(&prefix)
                || done.adopted.contains(&prefix)
                || done.foreign.contains(&prefix)
            {
                continue;
            }
            match current
                .iter()
                .find(|a| a.index == index && a.prefix == prefix)
            {
                Some(a) if a.ours => done.adopted.push(prefix),
                Some(_) => done.foreign.push(prefix),
                None => {
                    if prefix.addr().is_ipv4() {
                        for change in suppress_arp()? {
                            if !done.sysctls.contains(&change) {
                                done.sysctls.push(change);
                            }
                        }
                    }
                    self.add(index, prefix).await?;
                    done.added.push(prefix);
                }
            }
        }
        Ok(done)
    }

    async fn index(&self) -> Result<u32, AddressError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(self.interface.clone())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link.header.index),
            // The kernel answers ENODEV for an unknown name.
            Ok(None) | Err(rtnetlink::Error::NetlinkError(_)) => {
                Err(AddressError::NoInterface(self.interface.clone()))
            }
            Err(source) => Err(AddressError::Netlink {
                op: "look up",
                what: format!("interface {}", self.interface),
                source,
            }),
        }
    }

    async fn find(&self, index: u32, prefix: IpNet) -> Result<Option<Current>, AddressError> {
        Ok(self
            .dump()
            .await?
            .into_iter()
            .find(|a| a.index == index && a.prefix == prefix))
    }

    /// Every address of the namespace (all interfaces).
    async fn dump(&self) -> Result<Vec<Current>, AddressError> {
        let mut stream = self.handle.address().get().execute();
        let mut out = Vec::new();
        loop {
            let message = match stream.try_next().await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(source) => {
                    return Err(AddressError::Netlink {
                        op: "list",
                        what: "addresses".to_string(),
                        source,
                    })
                }
            };
            if let Some(prefix) = prefix_of(&message) {
                out.push(Current {
                    prefix,
                    index: message.header.index,
                    ours: is_ours(&message),
                    message,
                });
            }
        }
        Ok(out)
    }

    async fn add(&self, index: u32, prefix: IpNet) -> Result<(), AddressError> {
        let mut request = self
            .handle
            .address()
            .add(index, prefix.addr(), prefix.prefix_len());
        let message = request.message_mut();
        message
            .attributes
            .push(AddressAttribute::Protocol(AddressProtocol::from(
                ADDR_PROTO,
            )));
        match prefix.addr() {
            IpAddr::V4(_) => {
                if let Some(label) = label_for(&self.interface) {
                    message.attributes.push(AddressAttribute::Label(label));
                }
            }
            IpAddr::V6(_) => {
                message.header.flags = AddressHeaderFlags::Nodad;
                message
                    .attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        request
            .execute()
            .await
            .map_err(|source| AddressError::Netlink {
                op: "add",
                what: format!("{prefix} on {}", self.interface),
                source,
            })
    }

    async fn delete(&self, address: Current) -> Result<(), AddressError> {
        let what = format!("{} (interface index {})", address.prefix, address.index);
        self.handle
            .address()
            .del(address.message)
            .execute()
            .await
            .map_err(|source| AddressError::Netlink {
                op: "remove",
                what,
                source,
            })
    }
}

/// `<interface>:anyvip`, if it fits in a label.
fn label_for(interface: &str) -> Option<String> {
    let label = format!("{interface}{LABEL_SUFFIX}");
    (label.len() <= MAX_LABEL_LEN).then_some(label)
}

fn prefix_of(message: &AddressMessage) -> Option<IpNet> {
    // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer's on
    // point-to-point links (and IPv6 often sends only IFA_ADDRESS).
    let find = |local: bool| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if local => Some(*ip),
            AddressAttribute::Address(ip) if !local => Some(*ip),
            _ => None,
        })
    };
    let addr = find(true).or_else(|| find(false))?;
    let family_matches = matches!(
        (message.header.family, addr),
        (AddressFamily::Inet, IpAddr::V4(_)) | (AddressFamily::Inet6, IpAddr::V6(_))
    );
    family_matches
        .then(|| IpNet::new(addr, message.header.prefix_len).ok())
        .flatten()
}

fn is_ours(message: &AddressMessage) -> bool {
    message.attributes.iter().any(|a| match a {
        AddressAttribute::Protocol(p) => u8::from(*p) == ADDR_PROTO,
        AddressAttribute::Label(l) => {
            message.header.family == AddressFamily::Inet && l.ends_with(LABEL_SUFFIX)
        }
        _ => false,
    })
}

/// Keep the kernel from answering ARP for addresses on `lo` (and other
/// interfaces than the one asked on), and from using them as the sender of
/// its own ARP requests; see the module documentation. Returns what it
/// changed (nothing if all was already so). Acts on the calling thread's
/// network namespace.
pub fn suppress_arp() -> Result<Vec<SysctlChange>, SysctlError> {
    use crate::steer::{sysctl_interfaces, sysctl_set_if};
    let mut changes = Vec::new();
    // 1, 2 and 8 answer only for the incoming interface's addresses (or
    // never); 0 and 3-7 would answer for a VIP on lo.
    let answers = |v: u32| v == 0 || (3..=7).contains(&v);
    changes.extend(sysctl_set_if("all", "arp_ignore", 1, answers)?);
    for interface in sysctl_interfaces()? {
        if interface != "all" {
            changes.extend(sysctl_set_if(&interface, "arp_ignore", 1, |v| {
                (3..=7).contains(&v)
            })?);
        }
    }
    changes.extend(sysctl_set_if("all", "arp_announce", 2, |v| v < 2)?);
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_fit_or_are_left_out() {
        assert_eq!(label_for("lo").as_deref(), Some("lo:anyvip"));
        assert_eq!(label_for("eth0").as_deref(), Some("eth0:anyvip"));
        assert_eq!(label_for("enp0s31f6"), None);
    }

    fn message(family: AddressFamily, attributes: Vec<AddressAttribute>) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = family;
        m.header.prefix_len = 32;
        m.attributes = attributes;
        m
    }

    #[test]
    fn marks() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::from([0; 4]));
        let plain = message(AddressFamily::Inet, vec![AddressAttribute::Local(v4)]);
        assert!(!is_ours(&plain));
        let labelled = message(
            AddressFamily::Inet,
            vec![
                AddressAttribute::Local(v4),
                AddressAttribute::Label("lo:anyvip".into()),
            ],
        );
        assert!(is_ours(&labelled));
        let other_label = message(
            AddressFamily::Inet,
            vec![AddressAttribute::Label("lo:keepalived".into())],
        );
        assert!(!is_ours(&other_label));
        let proto = message(
            AddressFamily::Inet6,
            vec![AddressAttribute::Protocol(AddressProtocol::from(
                ADDR_PROTO,
            ))],
        );
        assert!(is_ours(&proto));
        let kernel = message(
            AddressFamily::Inet6,
            vec![AddressAttribute::Protocol(AddressProtocol::Loopback)],
        );
        assert!(!is_ours(&kernel));
        assert_eq!(
            prefix_of(&labelled).map(|p| p.to_string()).as_deref(),
            Some("192.0.2.1/32")
        );
        assert_eq!(prefix_of(&other_label), None);
    }
}
