//! nf_tables over netlink, without the `nft` program: a batch of table, chain and rule messages
//! sent on a `NETLINK_NETFILTER` socket and committed by the kernel as one transaction.
//!
//! Written by hand (a small attribute writer, no parser) because no crate fits: `nftables` only
//! drives the `nft` binary (a process spawn and a cache load, about 54 ms on `run -p`);
//! `rustables` is GPL-3.0 (this workspace is Apache-2.0), needs libclang for bindgen at build
//! time and has no `fib` expression; `nftnl` links the C libnftnl at run time; and
//! `netlink-packet-route` covers rtnetlink only. The subset here is exactly what Berth's table
//! uses: a handful of expressions (meta, payload, cmp, bitwise, fib, ct, immediate, nat, masq).
//! Attribute numbers come from `linux/netfilter/nf_tables.h`; message and register numbers from
//! `libc`.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use crate::error::{NetError, Result};

// Attribute numbers (enum nft_*_attributes in linux/netfilter/nf_tables.h).
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
const NFTA_FIB_DREG: u16 = 1;
const NFTA_FIB_RESULT: u16 = 2;
const NFTA_FIB_FLAGS: u16 = 3;
/// `NFT_FIB_RESULT_ADDRTYPE` and `NFTA_FIB_F_DADDR`.
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
/// `RTN_LOCAL`: what `fib daddr type` yields for the host's own addresses.
const RTN_LOCAL: u32 = 2;
/// `IPS_DST_NAT` of `enum ip_conntrack_status`.
const IPS_DST_NAT: u32 = 1 << 5;
const NLA_F_NESTED: u16 = 1 << 15;
/// Replies are bounded: a kernel that never answers fails the sync instead of hanging it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The register every match loads into and compares from (`NFT_REG_1`), and the second one
/// DNAT takes its port from.
const REG_1: u32 = libc::NFT_REG_1 as u32;
const REG_2: u32 = libc::NFT_REG_2 as u32;

/// Which header a payload expression reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Network,
    Transport,
}

/// One nf_tables expression of the subset Berth uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Loads a `NFT_META_*` key into register 1.
    Meta(u32),
    /// Loads `len` bytes at `offset` of a header into register 1.
    Payload {
        base: Base,
        offset: u32,
        len: u32,
    },
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
    /// Destination NAT to `addr` (4 or 16 bytes) and optionally `port`.
    Dnat {
        addr: Vec<u8>,
        port: Option<u16>,
    },
}

impl Expr {
    /// `meta iifname "name"` and friends: an interface name compared as the kernel stores it.
    pub fn ifname(key: i32, negate: bool, name: &str) -> [Expr; 2] {
        let mut data = name.as_bytes().to_vec();
        data.resize(libc::IFNAMSIZ, 0);
        [Expr::Meta(key as u32), Expr::Cmp { negate, data }]
    }

    /// `meta nfproto ipv4|ipv6`.
    pub fn nfproto(family: i32) -> [Expr; 2] {
        [
            Expr::Meta(libc::NFT_META_NFPROTO as u32),
            Expr::Cmp {
                negate: false,
                data: vec![family as u8],
            },
        ]
    }

    /// `meta l4proto tcp|udp`.
    pub fn l4proto(proto: u8) -> [Expr; 2] {
        [
            Expr::Meta(libc::NFT_META_L4PROTO as u32),
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

    /// An address field (`offset`, network byte order `addr`) inside `prefix_len` bits of it.
    pub fn addr_in(offset: u32, addr: &[u8], prefix_len: u8) -> Vec<Expr> {
        let len = addr.len() as u32;
        let mut out = vec![Expr::Payload {
            base: Base::Network,
            offset,
            len,
        }];
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

    /// A transport destination port (`tcp dport` / `udp dport`; the protocol is matched apart).
    pub fn dport(port: u16) -> [Expr; 2] {
        [
            Expr::Payload {
                base: Base::Transport,
                offset: 2,
                len: 2,
            },
            Expr::Cmp {
                negate: false,
                data: port.to_be_bytes().to_vec(),
            },
        ]
    }
}

/// A base chain's hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// "nat" or "filter".
    pub kind: &'static str,
    pub hooknum: i32,
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

/// Appends netlink attributes to a message buffer.
struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn pad(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }

    fn bytes(&mut self, kind: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.pad();
    }

    fn str(&mut self, kind: u16, text: &str) {
        let mut data = text.as_bytes().to_vec();
        data.push(0);
        self.bytes(kind, &data);
    }

    /// nf_tables numbers travel in network byte order.
    fn u32(&mut self, kind: u16, value: u32) {
        self.bytes(kind, &value.to_be_bytes());
    }

    fn nest(&mut self, kind: u16, body: impl FnOnce(&mut Writer)) {
        let start = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        body(&mut Writer(self.0));
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn value(&mut self, kind: u16, data: &[u8]) {
        self.nest(kind, |w| w.bytes(NFTA_DATA_VALUE, data));
    }

    fn verdict(&mut self, code: i32, chain: Option<&str>) {
        self.u32(NFTA_IMMEDIATE_DREG, libc::NFT_REG_VERDICT as u32);
        self.nest(NFTA_IMMEDIATE_DATA, |w| {
            w.nest(NFTA_DATA_VERDICT, |w| {
                w.u32(NFTA_VERDICT_CODE, code as u32);
                if let Some(chain) = chain {
                    w.str(NFTA_VERDICT_CHAIN, chain);
                }
            })
        });
    }

    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Meta(key) => self.expr_named("meta", |w| {
                w.u32(NFTA_META_DREG, REG_1);
                w.u32(NFTA_META_KEY, *key);
            }),
            Expr::Payload { base, offset, len } => self.expr_named("payload", |w| {
                let base = match base {
                    Base::Network => libc::NFT_PAYLOAD_NETWORK_HEADER,
                    Base::Transport => libc::NFT_PAYLOAD_TRANSPORT_HEADER,
                };
                w.u32(NFTA_PAYLOAD_DREG, REG_1);
                w.u32(NFTA_PAYLOAD_BASE, base as u32);
                w.u32(NFTA_PAYLOAD_OFFSET, *offset);
                w.u32(NFTA_PAYLOAD_LEN, *len);
            }),
            Expr::Mask(mask) => self.expr_named("bitwise", |w| {
                w.u32(NFTA_BITWISE_SREG, REG_1);
                w.u32(NFTA_BITWISE_DREG, REG_1);
                w.u32(NFTA_BITWISE_LEN, mask.len() as u32);
                w.value(NFTA_BITWISE_MASK, mask);
                w.value(NFTA_BITWISE_XOR, &vec![0; mask.len()]);
            }),
            Expr::Cmp { negate, data } => self.expr_named("cmp", |w| {
                let op = if *negate {
                    libc::NFT_CMP_NEQ
                } else {
                    libc::NFT_CMP_EQ
                };
                w.u32(NFTA_CMP_SREG, REG_1);
                w.u32(NFTA_CMP_OP, op as u32);
                w.value(NFTA_CMP_DATA, data);
            }),
            Expr::FibDaddrType => self.expr_named("fib", |w| {
                w.u32(NFTA_FIB_DREG, REG_1);
                w.u32(NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
                w.u32(NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
            }),
            Expr::CtStatus => self.expr_named("ct", |w| {
                w.u32(NFTA_CT_DREG, REG_1);
                w.u32(NFTA_CT_KEY, libc::NFT_CT_STATUS as u32);
            }),
            Expr::Jump(chain) => {
                self.expr_named("immediate", |w| w.verdict(libc::NFT_JUMP, Some(chain)))
            }
            Expr::Drop => self.expr_named("immediate", |w| w.verdict(libc::NF_DROP, None)),
            Expr::Masquerade => self.expr_named("masq", |_| {}),
            Expr::Dnat { addr, port } => {
                // Address into register 1, port into register 2, then the nat expression.
                self.expr_named("immediate", |w| {
                    w.u32(NFTA_IMMEDIATE_DREG, REG_1);
                    w.value(NFTA_IMMEDIATE_DATA, addr);
                });
                if let Some(port) = port {
                    self.expr_named("immediate", |w| {
                        w.u32(NFTA_IMMEDIATE_DREG, REG_2);
                        w.value(NFTA_IMMEDIATE_DATA, &port.to_be_bytes());
                    });
                }
                let family = if addr.len() == 16 {
                    libc::NFPROTO_IPV6
                } else {
                    libc::NFPROTO_IPV4
                };
                self.expr_named("nat", |w| {
                    w.u32(NFTA_NAT_TYPE, libc::NFT_NAT_DNAT as u32);
                    w.u32(NFTA_NAT_FAMILY, family as u32);
                    w.u32(NFTA_NAT_REG_ADDR_MIN, REG_1);
                    if port.is_some() {
                        w.u32(NFTA_NAT_REG_PROTO_MIN, REG_2);
                    }
                })
            }
        }
    }

    fn expr_named(&mut self, name: &str, body: impl FnOnce(&mut Writer)) {
        self.nest(NFTA_LIST_ELEM, |w| {
            w.str(NFTA_EXPR_NAME, name);
            w.nest(NFTA_EXPR_DATA, body);
        });
    }
}

/// One netlink message of a batch, as bytes.
fn message(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16, body: &[u8]) -> Vec<u8> {
    let len = (16 + 4 + body.len()) as u32;
    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    // struct nfgenmsg: family, version, res_id (big endian).
    out.push(family);
    out.push(libc::NFNETLINK_V0 as u8);
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The batch that replaces table `name` of family inet with `table` (or only removes it when
/// `table` is None): `add table; delete table; add table; chains; rules`, all or nothing.
/// Returns the bytes and, per sequence number that expects an ack, what the message was.
pub fn batch(name: &str, table: Option<&Table>, first_seq: u32) -> (Vec<u8>, Vec<(u32, String)>) {
    let inet = libc::NFPROTO_INET as u8;
    let kind = |msg: i32| ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | msg as u16;
    let req = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    let create = libc::NLM_F_CREATE as u16;
    let mut seq = first_seq;
    let mut out = message(
        libc::NFNL_MSG_BATCH_BEGIN as u16,
        libc::NLM_F_REQUEST as u16,
        seq,
        libc::AF_UNSPEC as u8,
        libc::NFNL_SUBSYS_NFTABLES as u16,
        &[],
    );
    let mut expected = Vec::new();
    let mut push = |out: &mut Vec<u8>, msg: i32, flags: u16, what: String, body: Vec<u8>| {
        seq += 1;
        out.extend(message(kind(msg), req | flags, seq, inet, 0, &body));
        expected.push((seq, what));
    };
    let table_body = || {
        let mut b = Vec::new();
        Writer(&mut b).str(NFTA_TABLE_NAME, name);
        b
    };
    push(
        &mut out,
        libc::NFT_MSG_NEWTABLE,
        create,
        format!("add table inet {name}"),
        table_body(),
    );
    push(
        &mut out,
        libc::NFT_MSG_DELTABLE,
        0,
        format!("delete table inet {name}"),
        table_body(),
    );
    if let Some(table) = table {
        push(
            &mut out,
            libc::NFT_MSG_NEWTABLE,
            create,
            format!("add table inet {name}"),
            table_body(),
        );
        for chain in &table.chains {
            let mut b = Vec::new();
            let mut w = Writer(&mut b);
            w.str(NFTA_CHAIN_TABLE, name);
            w.str(NFTA_CHAIN_NAME, &chain.name);
            if let Some(hook) = &chain.hook {
                w.nest(NFTA_CHAIN_HOOK, |w| {
                    w.u32(NFTA_HOOK_HOOKNUM, hook.hooknum as u32);
                    w.u32(NFTA_HOOK_PRIORITY, hook.priority as u32);
                });
                w.u32(NFTA_CHAIN_POLICY, libc::NF_ACCEPT as u32);
                w.str(NFTA_CHAIN_TYPE, hook.kind);
            }
            push(
                &mut out,
                libc::NFT_MSG_NEWCHAIN,
                create,
                format!("add chain inet {name} {}", chain.name),
                b,
            );
        }
        for (i, rule) in table.rules.iter().enumerate() {
            let mut b = Vec::new();
            let mut w = Writer(&mut b);
            w.str(NFTA_RULE_TABLE, name);
            w.str(NFTA_RULE_CHAIN, &rule.chain);
            w.nest(NFTA_RULE_EXPRESSIONS, |w| {
                for e in &rule.exprs {
                    w.expr(e);
                }
            });
            push(
                &mut out,
                libc::NFT_MSG_NEWRULE,
                create | libc::NLM_F_APPEND as u16,
                format!("rule {i} of chain {}: {:?}", rule.chain, rule.exprs),
                b,
            );
        }
    }
    seq += 1;
    out.extend(message(
        libc::NFNL_MSG_BATCH_END as u16,
        libc::NLM_F_REQUEST as u16,
        seq,
        libc::AF_UNSPEC as u8,
        libc::NFNL_SUBSYS_NFTABLES as u16,
        &[],
    ));
    (out, expected)
}

fn fw_err(what: impl std::fmt::Display) -> NetError {
    NetError::Firewall(what.to_string())
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

fn open_socket() -> Result<Socket> {
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| fw_err(format!("socket: {e}")))?;
    socket
        .bind_auto()
        .map_err(|e| fw_err(format!("bind: {e}")))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| fw_err(format!("connect: {e}")))?;
    // SAFETY: the fd belongs to `socket`, which outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(socket.as_raw_fd()) };
    set_buffers(fd, 4 << 20);
    nix::sys::socket::setsockopt(
        &fd.as_fd(),
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(REPLY_TIMEOUT.as_secs() as i64, 0),
    )
    .map_err(|e| fw_err(format!("setting the reply timeout: {e}")))?;
    Ok(socket)
}

/// One nf_tables socket per network namespace, kept open for the life of the process.
///
/// Closing an nf_tables socket makes the kernel (`nft_rcv_nl_event`) flush the transaction
/// destroy work, which waits for an RCU grace period whenever the last commit deleted anything
/// (every table replacement does): 4–11 ms measured on the `run -p` path. Kept open, the socket
/// is closed at exit, by which time that work has long finished.
struct Cached {
    netns: u64,
    socket: Socket,
    sequence: u32,
}

static SOCKETS: std::sync::Mutex<Vec<Cached>> = std::sync::Mutex::new(Vec::new());

fn current_netns() -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .map_err(|e| fw_err(format!("/proc/thread-self/ns/net: {e}")))
}

/// Replaces table `inet <name>` with `table` (None: removes it) in one kernel transaction, in the
/// calling thread's network namespace.
pub fn replace_table(name: &str, table: Option<&Table>) -> Result<()> {
    let netns = current_netns()?;
    let mut cache = SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
    let mut entry = match cache.iter().position(|c| c.netns == netns) {
        Some(i) => cache.swap_remove(i),
        None => Cached {
            netns,
            socket: open_socket()?,
            sequence: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as u32)
                .unwrap_or(1),
        },
    };
    let (bytes, expected) = batch(name, table, entry.sequence);
    entry.sequence = entry.sequence.wrapping_add(expected.len() as u32 + 2);
    let result = transact(&entry.socket, &bytes, expected);
    // A socket whose batch failed may still hold replies: it is not reused.
    if result.is_ok() {
        cache.push(entry);
    }
    result
}

/// Sends one batch and waits for the kernel's ack of each message (or the first error).
fn transact(socket: &Socket, bytes: &[u8], expected: Vec<(u32, String)>) -> Result<()> {
    socket
        .send(bytes, 0)
        .map_err(|e| fw_err(format!("sending the batch: {e}")))?;
    let mut pending: std::collections::BTreeMap<u32, String> = expected.into_iter().collect();
    let mut buf = vec![0u8; 256 << 10];
    while !pending.is_empty() {
        let n = socket
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| fw_err(format!("waiting for the kernel's answer: {e}")))?;
        let mut data = &buf[..n.min(buf.len())];
        while data.len() >= 16 {
            let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
            let kind = u16::from_ne_bytes([data[4], data[5]]);
            let seq = u32::from_ne_bytes([data[8], data[9], data[10], data[11]]);
            if len < 16 || len > data.len() {
                break;
            }
            if kind == libc::NLMSG_ERROR as u16 && len >= 20 {
                let code = i32::from_ne_bytes([data[16], data[17], data[18], data[19]]);
                if let Some(what) = pending.remove(&seq) {
                    if code != 0 {
                        let err = std::io::Error::from_raw_os_error(-code);
                        return Err(fw_err(format!("{what}: {err}")));
                    }
                }
            }
            data = &data[((len + 3) & !3).min(data.len())..];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_masks() {
        let e = Expr::addr_in(12, &[10, 1, 2, 3], 20);
        assert_eq!(e[1], Expr::Mask(vec![255, 255, 240, 0]));
        assert_eq!(
            e[2],
            Expr::Cmp {
                negate: false,
                data: vec![10, 1, 0, 0]
            }
        );
        assert_eq!(Expr::addr_in(16, &[127, 0, 0, 1], 32).len(), 2);
        let v6 = Expr::addr_in(8, &[0xfd; 16], 64);
        assert_eq!(v6[1], Expr::Mask([[0xff; 8], [0; 8]].concat()));
    }

    #[test]
    fn batch_is_framed_and_acked_per_message() {
        let table = Table {
            chains: vec![Chain {
                name: "postrouting".into(),
                hook: Some(Hook {
                    kind: "nat",
                    hooknum: libc::NF_INET_POST_ROUTING,
                    priority: 100,
                }),
            }],
            rules: vec![Rule {
                chain: "postrouting".into(),
                exprs: vec![Expr::Masquerade],
            }],
        };
        let (bytes, expected) = batch("berth", Some(&table), 7);
        // begin, add, delete, add, chain, rule, end
        let mut count = 0;
        let mut data = &bytes[..];
        while !data.is_empty() {
            let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
            assert_eq!(len % 4, 0);
            count += 1;
            data = &data[len..];
        }
        assert_eq!(count, 7);
        assert_eq!(
            expected.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![8, 9, 10, 11, 12]
        );
        let (_, removal) = batch("berth", None, 1);
        assert_eq!(removal.len(), 2);
    }
}
