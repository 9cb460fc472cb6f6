//! nf_tables without the `nft` program: a table described as data ([`Table`]) is turned into
//! libnftnl objects by Mullvad's `nftnl` crate and sent as one batch on a libmnl netlink socket
//! (the `mnl` crate), which the kernel commits as one transaction. libnftnl does all message and
//! attribute encoding and libmnl all reply parsing; nothing here writes netlink bytes.
//!
//! The one expression `nftnl` lacks, `fib daddr type`, is built through `nftnl-sys`
//! (`nftnl_expr_alloc("fib")` and its attribute setters) behind [`FibDaddrType`], a small
//! implementation of `nftnl`'s `Expression` trait.
use std::ffi::CString;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::time::Duration;

use nftnl::expr::{
    Bitwise, Cmp, CmpOp, Conntrack, Expression, Immediate, Ipv4HeaderField, Ipv6HeaderField,
    Masquerade, Meta, Nat, NatType, NetworkHeaderField, Payload, Register, TcpHeaderField,
    TransportHeaderField, Verdict,
};
use nftnl::nftnl_sys as sys;
use nftnl::{Batch, ChainType, FinalizedBatch, MsgType, Policy, ProtoFamily};

use crate::error::{NetError, Result};

/// Replies are bounded: a kernel that never answers fails the sync instead of hanging it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// `NFT_FIB_RESULT_ADDRTYPE` and `NFTA_FIB_F_DADDR` of `linux/netfilter/nf_tables.h` (values
/// for the `fib` expression's result and flags; neither `libc` nor `nftnl-sys` names them).
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
/// `RTN_LOCAL`: what `fib daddr type` yields for the host's own addresses.
const RTN_LOCAL: u32 = 2;
/// `IPS_DST_NAT` of `enum ip_conntrack_status`.
const IPS_DST_NAT: u32 = 1 << 5;

/// The interface-name keys of `meta` that Berth matches on, and the protocol keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    IifName,
    OifName,
    NfProto,
    L4Proto,
}

/// The header fields Berth's rules read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Ip4Saddr,
    Ip4Daddr,
    Ip6Saddr,
    /// `tcp dport` or `udp dport` (the same two bytes; the protocol is matched apart).
    Dport,
}

/// One nf_tables expression of the subset Berth uses; register 1 is the one every match loads
/// into and compares from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Meta(MetaKey),
    Payload(Field),
    /// Register 1 = register 1 & mask (xor 0): a prefix or flag test.
    Mask(Vec<u8>),
    /// Compares register 1 with `data`: equal, or not equal when `negate`.
    Cmp {
        negate: bool,
        data: Vec<u8>,
    },
    /// Loads the address type of the destination (`fib daddr type`) into register 1.
    FibDaddrType,
    /// Loads the conntrack status bits into register 1.
    CtStatus,
    /// Jumps to a regular chain.
    Jump(String),
    Drop,
    Masquerade,
    /// Destination NAT to `addr` and optionally `port`.
    Dnat {
        addr: IpAddr,
        port: Option<u16>,
    },
}

impl Expr {
    /// `meta iifname "name"` / `meta oifname "name"`: the name compared as the kernel stores it
    /// (NUL-padded to `IFNAMSIZ`).
    pub fn ifname(key: MetaKey, negate: bool, name: &str) -> [Expr; 2] {
        let mut data = name.as_bytes().to_vec();
        data.resize(libc::IFNAMSIZ, 0);
        [Expr::Meta(key), Expr::Cmp { negate, data }]
    }

    /// `meta nfproto ipv4|ipv6`.
    pub fn nfproto(family: i32) -> [Expr; 2] {
        [
            Expr::Meta(MetaKey::NfProto),
            Expr::Cmp {
                negate: false,
                data: vec![family as u8],
            },
        ]
    }

    /// `meta l4proto tcp|udp`.
    pub fn l4proto(proto: u8) -> [Expr; 2] {
        [
            Expr::Meta(MetaKey::L4Proto),
            Expr::Cmp {
                negate: false,
                data: vec![proto],
            },
        ]
    }

    /// `fib daddr type local`.
    pub fn daddr_is_local() -> [Expr; 2] {
        [
            Expr::FibDaddrType,
            Expr::Cmp {
                negate: false,
                data: RTN_LOCAL.to_ne_bytes().to_vec(),
            },
        ]
    }

    /// `ct status dnat`.
    pub fn ct_dnat() -> [Expr; 3] {
        [
            Expr::CtStatus,
            Expr::Mask(IPS_DST_NAT.to_ne_bytes().to_vec()),
            Expr::Cmp {
                negate: true,
                data: vec![0; 4],
            },
        ]
    }

    /// An address field (network byte order `addr`) inside `prefix_len` bits of it.
    pub fn addr_in(field: Field, addr: &[u8], prefix_len: u8) -> Vec<Expr> {
        let mut out = vec![Expr::Payload(field)];
        let bits = usize::from(prefix_len);
        if bits < addr.len() * 8 {
            let mask: Vec<u8> = (0..addr.len())
                .map(|i| {
                    let set = bits.saturating_sub(i * 8).min(8);
                    (0xffu16 << (8 - set)) as u8
                })
                .collect();
            let net = addr.iter().zip(&mask).map(|(a, m)| a & m).collect();
            out.push(Expr::Mask(mask));
            out.push(Expr::Cmp {
                negate: false,
                data: net,
            });
        } else {
            out.push(Expr::Cmp {
                negate: false,
                data: addr.to_vec(),
            });
        }
        out
    }

    /// A transport destination port (`tcp dport` / `udp dport`).
    pub fn dport(port: u16) -> [Expr; 2] {
        [
            Expr::Payload(Field::Dport),
            Expr::Cmp {
                negate: false,
                data: port.to_be_bytes().to_vec(),
            },
        ]
    }
}

/// Which hook a base chain sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPoint {
    PreRouting,
    Output,
    PostRouting,
    Forward,
}

/// A base chain's type and hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub nat: bool,
    pub point: HookPoint,
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub hook: Option<Hook>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub chain: String,
    pub exprs: Vec<Expr>,
}

/// A table's whole contents, replaced in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub chains: Vec<Chain>,
    pub rules: Vec<Rule>,
}

/// `fib daddr type` as an `nftnl` expression: `nftnl` has no `fib`, libnftnl does.
struct FibDaddrType;

impl Expression for FibDaddrType {
    fn to_expr(&self, _rule: &nftnl::Rule) -> NonNull<sys::nftnl_expr> {
        // SAFETY: the name is a NUL-terminated string libnftnl copies; a null return (out of
        // memory) is handled below as `nftnl` itself handles it.
        let expr = unsafe { sys::nftnl_expr_alloc(c"fib".as_ptr()) };
        let Some(expr) = NonNull::new(expr) else {
            std::process::abort();
        };
        // SAFETY: `expr` is a live "fib" expression and these are its u32 attributes.
        unsafe {
            sys::nftnl_expr_set_u32(
                expr.as_ptr(),
                sys::NFTNL_EXPR_FIB_DREG as u16,
                libc::NFT_REG_1 as u32,
            );
            sys::nftnl_expr_set_u32(
                expr.as_ptr(),
                sys::NFTNL_EXPR_FIB_RESULT as u16,
                NFT_FIB_RESULT_ADDRTYPE,
            );
            sys::nftnl_expr_set_u32(
                expr.as_ptr(),
                sys::NFTNL_EXPR_FIB_FLAGS as u16,
                NFTA_FIB_F_DADDR,
            );
        }
        expr
    }
}

fn fw_err(what: impl std::fmt::Display) -> NetError {
    NetError::Firewall(what.to_string())
}

fn c_name(name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| fw_err(format!("name {name:?} holds a NUL byte")))
}

fn add_expr(rule: &mut nftnl::Rule, expr: &Expr) -> Result<()> {
    match expr {
        Expr::Meta(key) => rule.add_expr(&match key {
            MetaKey::IifName => Meta::IifName,
            MetaKey::OifName => Meta::OifName,
            MetaKey::NfProto => Meta::NfProto,
            MetaKey::L4Proto => Meta::L4Proto,
        }),
        Expr::Payload(field) => rule.add_expr(&match field {
            Field::Ip4Saddr => Payload::Network(NetworkHeaderField::Ipv4(Ipv4HeaderField::Saddr)),
            Field::Ip4Daddr => Payload::Network(NetworkHeaderField::Ipv4(Ipv4HeaderField::Daddr)),
            Field::Ip6Saddr => Payload::Network(NetworkHeaderField::Ipv6(Ipv6HeaderField::Saddr)),
            Field::Dport => Payload::Transport(TransportHeaderField::Tcp(TcpHeaderField::Dport)),
        }),
        Expr::Mask(mask) => {
            let xor = vec![0u8; mask.len()];
            rule.add_expr(&Bitwise::new(mask.as_slice(), xor.as_slice()))
        }
        Expr::Cmp { negate, data } => {
            let op = if *negate { CmpOp::Neq } else { CmpOp::Eq };
            rule.add_expr(&Cmp::new(op, data.as_slice()))
        }
        Expr::FibDaddrType => rule.add_expr(&FibDaddrType),
        Expr::CtStatus => rule.add_expr(&Conntrack::Status),
        Expr::Jump(chain) => rule.add_expr(&Verdict::Jump {
            chain: c_name(chain)?,
        }),
        Expr::Drop => rule.add_expr(&Verdict::Drop),
        Expr::Masquerade => rule.add_expr(&Masquerade),
        Expr::Dnat { addr, port } => {
            // Address into register 1, port into register 2, then the nat expression.
            let family = match addr {
                IpAddr::V4(v4) => {
                    rule.add_expr(&Immediate::new(v4.octets(), Register::Reg1));
                    ProtoFamily::Ipv4
                }
                IpAddr::V6(v6) => {
                    rule.add_expr(&Immediate::new(v6.octets(), Register::Reg1));
                    ProtoFamily::Ipv6
                }
            };
            if let Some(port) = port {
                rule.add_expr(&Immediate::new(port.to_be_bytes(), Register::Reg2));
            }
            rule.add_expr(&Nat {
                nat_type: NatType::DNat,
                family,
                ip_register: Register::Reg1,
                port_register: port.map(|_| Register::Reg2),
            });
        }
    }
    Ok(())
}

/// The batch that replaces table `inet <name>` with `table` (or only removes it when `table` is
/// None): `add table; delete table; add table; chains; rules`, all or nothing. Also returns
/// what each message of the batch is, in order, to name the one the kernel refuses.
pub fn batch(name: &str, table: Option<&Table>) -> Result<(FinalizedBatch, Vec<String>)> {
    let mut batch = Batch::new();
    let mut labels = Vec::new();
    let nft_table = nftnl::Table::new(c_name(name)?, ProtoFamily::Inet);
    batch.add(&nft_table, MsgType::Add);
    labels.push(format!("add table inet {name}"));
    batch.add(&nft_table, MsgType::Del);
    labels.push(format!("delete table inet {name}"));
    if let Some(table) = table {
        batch.add(&nft_table, MsgType::Add);
        labels.push(format!("add table inet {name}"));
        let mut chains = Vec::with_capacity(table.chains.len());
        for chain in &table.chains {
            let mut c = nftnl::Chain::new(c_name(&chain.name)?, &nft_table);
            if let Some(hook) = &chain.hook {
                let point = match hook.point {
                    HookPoint::PreRouting => nftnl::Hook::PreRouting,
                    HookPoint::Output => nftnl::Hook::Out,
                    HookPoint::PostRouting => nftnl::Hook::PostRouting,
                    HookPoint::Forward => nftnl::Hook::Forward,
                };
                c.set_hook(point, hook.priority);
                c.set_type(if hook.nat {
                    ChainType::Nat
                } else {
                    ChainType::Filter
                });
                c.set_policy(Policy::Accept);
            }
            batch.add(&c, MsgType::Add);
            labels.push(format!("add chain inet {name} {}", chain.name));
            chains.push((chain.name.as_str(), c));
        }
        for (i, rule) in table.rules.iter().enumerate() {
            let chain = chains
                .iter()
                .find(|(n, _)| *n == rule.chain)
                .map(|(_, c)| c)
                .ok_or_else(|| fw_err(format!("rule {i}: no chain {}", rule.chain)))?;
            let mut r = nftnl::Rule::new(chain);
            for e in &rule.exprs {
                add_expr(&mut r, e)?;
            }
            batch.add(&r, MsgType::Add);
            labels.push(format!(
                "rule {i} of chain {}: {:?}",
                rule.chain, rule.exprs
            ));
        }
    }
    Ok((batch.finalize(), labels))
}

/// Aligned room for the kernel's answers (libmnl reads `nlmsghdr`s in place).
#[repr(C, align(8))]
struct ReplyBuffer([u8; 64 << 10]);

/// One nf_tables socket per network namespace, kept open for the life of the process.
///
/// Closing an nf_tables socket makes the kernel (`nft_rcv_nl_event`) flush the transaction
/// destroy work, which waits for an RCU grace period whenever the last commit deleted anything
/// (every table replacement does): 4–11 ms measured on the `run -p` path. Kept open, the socket
/// is closed at exit, by which time that work has long finished.
struct Cached {
    netns: u64,
    socket: mnl::Socket,
    replies: Box<ReplyBuffer>,
}

// SAFETY: the libmnl socket is only used by whoever holds the `SOCKETS` lock.
unsafe impl Send for Cached {}

static SOCKETS: std::sync::Mutex<Vec<Cached>> = std::sync::Mutex::new(Vec::new());

fn current_netns() -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .map_err(|e| fw_err(format!("/proc/thread-self/ns/net: {e}")))
}

fn set_buffers(fd: BorrowedFd<'_>, bytes: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    // Best effort: the force variants need CAP_NET_ADMIN, the plain ones are capped by
    // net.core.[rw]mem_max; either is enough for Berth's table.
    if setsockopt(&fd, sockopt::SndBufForce, &bytes).is_err() {
        let _ = setsockopt(&fd, sockopt::SndBuf, &bytes);
    }
    if setsockopt(&fd, sockopt::RcvBufForce, &bytes).is_err() {
        let _ = setsockopt(&fd, sockopt::RcvBuf, &bytes);
    }
}

fn open_socket(netns: u64) -> Result<Cached> {
    let socket =
        mnl::Socket::new(mnl::Bus::Netfilter).map_err(|e| fw_err(format!("socket: {e}")))?;
    // SAFETY: the fd belongs to `socket`, which outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(socket.as_raw_fd()) };
    set_buffers(fd, 4 << 20);
    nix::sys::socket::setsockopt(
        &fd,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(REPLY_TIMEOUT.as_secs() as i64, 0),
    )
    .map_err(|e| fw_err(format!("setting the reply timeout: {e}")))?;
    Ok(Cached {
        netns,
        socket,
        replies: Box::new(ReplyBuffer([0; 64 << 10])),
    })
}

/// Replaces table `inet <name>` with `table` (None: removes it) in one kernel transaction, in the
/// calling thread's network namespace.
pub fn replace_table(name: &str, table: Option<&Table>) -> Result<()> {
    let (batch, labels) = batch(name, table)?;
    let netns = current_netns()?;
    let mut cache = SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
    let mut entry = match cache.iter().position(|c| c.netns == netns) {
        Some(i) => cache.swap_remove(i),
        None => open_socket(netns)?,
    };
    let result = transact(&mut entry, &batch, &labels);
    // A socket whose batch failed may still hold replies: it is not reused.
    if result.is_ok() {
        cache.push(entry);
    }
    result
}

/// Sends one batch and waits for the kernel's ack of each message (or the first error).
fn transact(entry: &mut Cached, batch: &FinalizedBatch, labels: &[String]) -> Result<()> {
    entry
        .socket
        .send_all(batch)
        .map_err(|e| fw_err(format!("sending the batch: {e}")))?;
    let portid = entry.socket.portid();
    let mut expected = batch.sequence_numbers();
    // Kernels from 6.10 also ack the batch's begin and end messages: those are the two extra
    // sequence numbers, the first before every message.
    let first_message = if expected.len() > labels.len() {
        expected.start + 1
    } else {
        expected.start
    };
    let label = |seq: u32| {
        seq.checked_sub(first_message)
            .and_then(|i| labels.get(i as usize))
            .map(String::as_str)
            .unwrap_or("batch begin/end")
    };
    while !expected.is_empty() {
        let messages = entry
            .socket
            .recv(&mut entry.replies.0)
            .map_err(|e| fw_err(format!("waiting for the kernel's answer: {e}")))?;
        for message in messages {
            let message =
                message.map_err(|e| fw_err(format!("reading the kernel's answer: {e}")))?;
            let Some(seq) = expected.next() else {
                return Err(fw_err("an answer to no message of the batch"));
            };
            mnl::cb_run(message, seq, portid)
                .map_err(|e| fw_err(format!("{}: {e}", label(seq))))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_masks() {
        let e = Expr::addr_in(Field::Ip4Saddr, &[10, 1, 2, 3], 20);
        assert_eq!(e[1], Expr::Mask(vec![255, 255, 240, 0]));
        assert_eq!(
            e[2],
            Expr::Cmp {
                negate: false,
                data: vec![10, 1, 0, 0]
            }
        );
        assert_eq!(Expr::addr_in(Field::Ip4Daddr, &[127, 0, 0, 1], 32).len(), 2);
        let v6 = Expr::addr_in(Field::Ip6Saddr, &[0xfd; 16], 64);
        assert_eq!(v6[1], Expr::Mask([[0xff; 8], [0; 8]].concat()));
    }

    #[test]
    fn batch_holds_every_message_and_names_each() {
        let table = Table {
            chains: vec![Chain {
                name: "postrouting".into(),
                hook: Some(Hook {
                    nat: true,
                    point: HookPoint::PostRouting,
                    priority: 100,
                }),
            }],
            rules: vec![Rule {
                chain: "postrouting".into(),
                exprs: vec![
                    Expr::FibDaddrType,
                    Expr::Masquerade,
                    Expr::Dnat {
                        addr: IpAddr::from([10, 0, 0, 2]),
                        port: Some(80),
                    },
                ],
            }],
        };
        // add, delete, add, chain, rule
        let (batch, labels) = batch("berth", Some(&table)).expect("batch");
        assert_eq!(labels.len(), 5);
        assert!(batch.sequence_numbers().len() >= labels.len());
        let (_, removal) = batch_only_removal();
        assert_eq!(removal.len(), 2);
        let bad = Table {
            chains: vec![],
            rules: vec![Rule {
                chain: "nowhere".into(),
                exprs: vec![],
            }],
        };
        assert!(super::batch("berth", Some(&bad)).is_err());
    }

    fn batch_only_removal() -> (FinalizedBatch, Vec<String>) {
        batch("berth", None).expect("removal batch")
    }
}
