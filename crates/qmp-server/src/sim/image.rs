//! What the simulator reports of the image files under its nodes, read off the files
//! themselves as QEMU reads them: a file's length in whole sectors and the space it takes
//! on disk, a qcow2 header's size, cluster size, features and backing file.

use std::io::Read;
use std::os::unix::fs::MetadataExt;

use serde_json::{json, Map, Value};

/// QEMU counts a file's length in 512-byte sectors.
const SECTOR: u64 = 512;

/// The header extension that names the backing file's format.
const EXT_BACKING_FORMAT: u32 = 0xE279_2ACA;

/// The most of a header read (header, extensions and backing file name live in its first
/// cluster, which is at least 512 bytes and at most 2 MiB).
const MAX_HEADER: u64 = 64 << 10;

/// A qcow2 image's header, as far as `query-named-block-nodes` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Qcow2 {
    pub version: u32,
    pub size: u64,
    pub cluster_bits: u32,
    pub incompatible: u64,
    pub compatible: u64,
    pub refcount_order: u32,
    pub compression_type: u8,
    pub backing: Option<String>,
    pub backing_format: Option<String>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl Qcow2 {
    /// The header of the qcow2 image at `path`; `None` if it is not one.
    pub fn read(path: &str) -> Option<Qcow2> {
        let mut head = Vec::new();
        std::fs::File::open(path).ok()?.take(MAX_HEADER).read_to_end(&mut head).ok()?;
        if head.get(..4)? != b"QFI\xfb" {
            return None;
        }
        let version = be32(&head, 4)?;
        let mut q = Qcow2 {
            version,
            size: be64(&head, 24)?,
            cluster_bits: be32(&head, 20)?,
            refcount_order: 4,
            ..Qcow2::default()
        };
        let mut header_length = 72;
        if version >= 3 {
            q.incompatible = be64(&head, 72)?;
            q.compatible = be64(&head, 80)?;
            q.refcount_order = be32(&head, 96)?;
            header_length = be32(&head, 100)? as usize;
            if header_length > 104 {
                q.compression_type = *head.get(104)?;
            }
        }
        let (offset, len) = (be64(&head, 8)? as usize, be32(&head, 16)? as usize);
        if offset != 0 && len != 0 {
            q.backing = Some(String::from_utf8_lossy(head.get(offset..offset + len)?).into_owned());
        }
        // Extensions: type, length, data padded to 8 bytes; type 0 ends them.
        let mut at = header_length;
        while let (Some(kind), Some(len)) = (be32(&head, at), be32(&head, at + 4)) {
            let len = len as usize;
            if kind == 0 {
                break;
            }
            if kind == EXT_BACKING_FORMAT {
                let data = head.get(at + 8..at + 8 + len)?;
                q.backing_format = Some(String::from_utf8_lossy(data).into_owned());
            }
            at += 8 + len.div_ceil(8) * 8;
        }
        Some(q)
    }

    /// `format-specific` of the image's info, members in QEMU's order.
    fn format_specific(&self) -> Value {
        let mut data = Map::new();
        if self.version >= 3 {
            data.insert("compat".into(), json!("1.1"));
            data.insert("extended-l2".into(), json!(self.incompatible & (1 << 4) != 0));
            data.insert("lazy-refcounts".into(), json!(self.compatible & 1 != 0));
            data.insert("corrupt".into(), json!(self.incompatible & (1 << 1) != 0));
        } else {
            data.insert("compat".into(), json!("0.10"));
        }
        data.insert("refcount-bits".into(), json!(1u64 << self.refcount_order.min(6)));
        let compression = if self.compression_type == 1 { "zstd" } else { "zlib" };
        data.insert("compression-type".into(), json!(compression));
        json!({"type": "qcow2", "data": data})
    }
}

/// A file's length as QEMU takes it: rounded up to whole sectors.
pub(crate) fn file_length(meta: &std::fs::Metadata) -> u64 {
    meta.len().div_ceil(SECTOR) * SECTOR
}

/// The space a file takes on disk, `actual-size`.
fn allocated(path: &str) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.blocks() * 512)
}

/// The backing file's name as QEMU completes it: relative names are taken from the image's
/// own directory.
fn full_backing(image: &str, backing: &str) -> String {
    if backing.starts_with('/') || backing.contains(':') {
        return backing.to_string();
    }
    match image.rfind('/') {
        Some(i) => format!("{}{backing}", &image[..=i]),
        None => backing.to_string(),
    }
}

/// One node's `image` member, as the block layer builds it (members inserted in schema
/// order, which sets QEMU's output order); `backing_image` is its backing node's, when the
/// chain is shown whole.
pub(crate) fn image_info(
    driver: &str,
    filename: &str,
    path: &str,
    size: u64,
    qcow2: Option<&Qcow2>,
    backing_image: Option<Value>,
) -> Value {
    let mut m = Map::new();
    m.insert("filename".into(), json!(filename));
    m.insert("format".into(), json!(driver));
    // A null node, or one over a null node, has no image on disk.
    if !path.is_empty() {
        m.insert("dirty-flag".into(), json!(qcow2.is_some_and(|q| q.incompatible & 1 != 0)));
    }
    let actual = if path.is_empty() { Some(0) } else { allocated(path) };
    if let Some(actual) = actual {
        m.insert("actual-size".into(), json!(actual));
    }
    m.insert("virtual-size".into(), json!(size));
    if let Some(q) = qcow2 {
        m.insert("cluster-size".into(), json!(1u64 << q.cluster_bits.min(31)));
        if let Some(backing) = &q.backing {
            m.insert("backing-filename".into(), json!(backing));
            m.insert("full-backing-filename".into(), json!(full_backing(path, backing)));
            if let Some(format) = &q.backing_format {
                m.insert("backing-filename-format".into(), json!(format));
            }
        }
        if let Some(b) = backing_image {
            m.insert("backing-image".into(), b);
        }
        m.insert("format-specific".into(), q.format_specific());
    }
    Value::Object(m)
}
