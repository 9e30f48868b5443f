//! The containerlab topology file, reduced to what the harness builds.
//!
//! Read from `containerlab/anyvip.clab.yml` (the same file containerlab deploys), so the
//! netns lab and the containerlab lab cannot drift. Parsing is strict: a key the harness
//! does not model (`groups`, `kinds`, `startup-config`, link `vars`, ...) is an error, so
//! adding one to the file forces a decision here instead of being silently ignored.
//! Keys that only matter to Docker (`image`, `cmd`, `env`, `mgmt`, `prefix`) are accepted
//! and not used.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Label on every node that tells the harness what to run there.
pub const ROLE_LABEL: &str = "anyvip.role";

/// What a node is, from its `anyvip.role` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// FRR router: the harness starts FRR from the files bound under `/etc/frr/`.
    Frr,
    /// BIRD 2 router: the harness starts BIRD with the file bound at `/etc/bird/bird.conf`.
    Bird,
    /// Control-plane node: tests start `anyvip run -c ...` there themselves.
    Node,
    /// Plain host.
    Client,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        match s {
            "frr" => Some(Role::Frr),
            "bird" => Some(Role::Bird),
            "node" => Some(Role::Node),
            "client" => Some(Role::Client),
            _ => None,
        }
    }
}

/// `host-path:container-path[:ro|rw]`, host path made absolute (relative to the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub host: PathBuf,
    pub container: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub kind: String,
    pub image: Option<String>,
    pub role: Role,
    /// Each `exec:` line split into argv like containerlab does (no shell).
    pub exec: Vec<Vec<String>>,
    pub binds: Vec<Bind>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub node: String,
    pub iface: String,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub a: Endpoint,
    pub b: Endpoint,
}

#[derive(Debug, Clone)]
pub struct Topology {
    pub name: String,
    /// Directory of the topology file: bind host paths are relative to it.
    pub dir: PathBuf,
    pub nodes: BTreeMap<String, Node>,
    pub links: Vec<Link>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSection {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    prefix: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    mgmt: Option<serde_yaml_ng::Value>,
    topology: TopologySection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologySection {
    nodes: BTreeMap<String, NodeSection>,
    #[serde(default)]
    links: Vec<LinkSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSection {
    kind: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    cmd: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    binds: Vec<String>,
    #[serde(default)]
    exec: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkSection {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    endpoints: Vec<EndpointSection>,
}

/// Brief form `"node:eth1"` or the veth form `{node: n, interface: eth1}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum EndpointSection {
    Brief(String),
    Full { node: String, interface: String },
}

/// Longest Linux interface name (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

impl Topology {
    /// `containerlab/anyvip.clab.yml` of this package.
    pub fn default_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("containerlab/anyvip.clab.yml")
    }

    pub fn load(path: &Path) -> Result<Topology, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Topology::parse(&text, &dir).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parse and check a topology; `dir` anchors relative bind paths.
    pub fn parse(yaml: &str, dir: &Path) -> Result<Topology, String> {
        let file: FileSection = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        let mut nodes = BTreeMap::new();
        for (name, n) in file.topology.nodes {
            nodes.insert(name.clone(), node(&name, n, dir)?);
        }
        let mut links = Vec::new();
        for (i, l) in file.topology.links.into_iter().enumerate() {
            if let Some(kind) = &l.kind {
                if kind != "veth" {
                    return Err(format!(
                        "links[{i}]: type {kind:?}: only veth links are built"
                    ));
                }
            }
            let ends = l
                .endpoints
                .into_iter()
                .map(|e| endpoint(e).map_err(|e| format!("links[{i}]: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            let [a, b]: [Endpoint; 2] = ends
                .try_into()
                .map_err(|_| format!("links[{i}]: a link has exactly two endpoints"))?;
            links.push(Link { a, b });
        }
        let topo = Topology {
            name: file.name,
            dir: dir.to_path_buf(),
            nodes,
            links,
        };
        topo.check()?;
        Ok(topo)
    }

    /// Every endpoint names a defined node and a usable interface, used once.
    fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, l) in self.links.iter().enumerate() {
            for e in [&l.a, &l.b] {
                if !self.nodes.contains_key(&e.node) {
                    return Err(format!(
                        "links[{i}]: endpoint {}:{} names no defined node",
                        e.node, e.iface
                    ));
                }
                if e.iface.is_empty()
                    || e.iface.len() > IFNAME_MAX
                    || e.iface == "lo"
                    || e.iface == "eth0"
                    || e.iface.contains(['/', ' ', ':'])
                {
                    return Err(format!(
                        "links[{i}]: interface {:?} of {}: want a Linux name of at most \
                         {IFNAME_MAX} chars, not lo or eth0 (containerlab's management interface)",
                        e.iface, e.node
                    ));
                }
                if !seen.insert(e.clone()) {
                    return Err(format!("links[{i}]: {}:{} is used twice", e.node, e.iface));
                }
            }
            if l.a.node == l.b.node {
                return Err(format!("links[{i}]: both ends on {}", l.a.node));
            }
        }
        Ok(())
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Names of the nodes with this role, sorted.
    pub fn with_role(&self, role: Role) -> Vec<&str> {
        self.nodes
            .values()
            .filter(|n| n.role == role)
            .map(|n| n.name.as_str())
            .collect()
    }

    /// The other end of the link on `node:iface`.
    pub fn peer(&self, node: &str, iface: &str) -> Option<&Endpoint> {
        self.links.iter().find_map(|l| {
            if l.a.node == node && l.a.iface == iface {
                Some(&l.b)
            } else if l.b.node == node && l.b.iface == iface {
                Some(&l.a)
            } else {
                None
            }
        })
    }

    /// `node`'s interfaces, in link order.
    pub fn ifaces(&self, node: &str) -> Vec<&str> {
        self.links
            .iter()
            .flat_map(|l| [&l.a, &l.b])
            .filter(|e| e.node == node)
            .map(|e| e.iface.as_str())
            .collect()
    }
}

fn node(name: &str, n: NodeSection, dir: &Path) -> Result<Node, String> {
    let at = |what: String| format!("nodes.{name}: {what}");
    if n.kind != "linux" {
        return Err(at(format!(
            "kind {:?}: the harness builds only kind linux",
            n.kind
        )));
    }
    let role = match n.labels.get(ROLE_LABEL) {
        None => {
            return Err(at(format!(
                "no label {ROLE_LABEL} (frr, bird, node or client)"
            )))
        }
        Some(r) => {
            Role::parse(r).ok_or_else(|| at(format!("label {ROLE_LABEL}: unknown role {r:?}")))?
        }
    };
    let exec = n
        .exec
        .iter()
        .map(|line| match shlex::split(line) {
            Some(argv) if !argv.is_empty() => Ok(argv),
            _ => Err(at(format!("exec {line:?}: cannot split into words"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let binds = n
        .binds
        .iter()
        .map(|b| bind(b, dir).map_err(&at))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Node {
        name: name.to_string(),
        kind: n.kind,
        image: n.image,
        role,
        exec,
        binds,
    })
}

fn bind(spec: &str, dir: &Path) -> Result<Bind, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container) = match parts.as_slice() {
        [h, c] => (*h, *c),
        [h, c, "ro" | "rw"] => (*h, *c),
        _ => return Err(format!("bind {spec:?}: want host:container[:ro|rw]")),
    };
    if !container.starts_with('/') || host.is_empty() {
        return Err(format!("bind {spec:?}: container path must be absolute"));
    }
    Ok(Bind {
        host: dir.join(host),
        container: PathBuf::from(container),
    })
}

fn endpoint(e: EndpointSection) -> Result<Endpoint, String> {
    match e {
        EndpointSection::Full { node, interface } => Ok(Endpoint {
            node,
            iface: interface,
        }),
        EndpointSection::Brief(s) => match s.split_once(':') {
            Some((node, iface)) if !node.is_empty() && !iface.contains(':') => Ok(Endpoint {
                node: node.to_string(),
                iface: iface.to_string(),
            }),
            _ => Err(format!("endpoint {s:?}: want node:interface")),
        },
    }
}
