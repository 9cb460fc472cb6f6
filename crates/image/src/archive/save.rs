//! `save`: the `docker save` layout, layers rebuilt byte for byte from tar-split.
use super::*;

impl Store {
    /// Writes a `docker save` archive of `references` to `out`.
    pub fn save(&self, references: &[String], out: &mut dyn Write) -> Result<()> {
        let mut order: Vec<String> = Vec::new();
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in references {
            let id = self.resolve_id(r)?;
            if !order.contains(&id) {
                order.push(id.clone());
            }
            let entry = tags.entry(id.clone()).or_default();
            if let Ok(parsed) = Reference::parse_tagged(r) {
                if self.lookup_reference(&parsed)?.as_deref() == Some(id.as_str())
                    && parsed.tag.is_some()
                {
                    let t = parsed.familiar_string();
                    if !entry.contains(&t) {
                        entry.push(t);
                    }
                }
            }
        }
        let mut w = ArchiveWriter {
            out,
            written: Default::default(),
        };
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for id in &order {
            let img = self.image(id)?;
            let mtime = img
                .config
                .created_time()
                .map(|t| t.timestamp().max(0) as u64)
                .unwrap_or(0);
            let mut layer_paths = Vec::new();
            for (chain, diff) in img.chain_ids().iter().zip(&img.config.rootfs.diff_ids) {
                let dir = hex_part(diff).to_string();
                let path = format!("{dir}/layer.tar");
                if w.written.insert(path.clone()) {
                    w.entry(
                        &format!("{dir}/"),
                        tar::EntryType::Directory,
                        0,
                        mtime,
                        &mut |_| Ok(0),
                    )?;
                    w.entry(
                        &format!("{dir}/VERSION"),
                        tar::EntryType::Regular,
                        3,
                        mtime,
                        &mut |o| {
                            o.write_all(b"1.0")
                                .map_err(ImageError::io("writing", "archive"))?;
                            Ok(3)
                        },
                    )?;
                    let size = self.layer_tar_size(chain)?;
                    w.entry(&path, tar::EntryType::Regular, size, mtime, &mut |o| {
                        self.export_layer(chain, o)
                    })?;
                }
                layer_paths.push(path);
            }
            let config_path = format!("{}.json", hex_part(id));
            let raw = img.raw_config.clone();
            w.entry(
                &config_path,
                tar::EntryType::Regular,
                raw.len() as u64,
                mtime,
                &mut |o| {
                    o.write_all(&raw)
                        .map_err(ImageError::io("writing", "archive"))?;
                    Ok(raw.len() as u64)
                },
            )?;
            let image_tags = tags.get(id).cloned().unwrap_or_default();
            if let Some(top) = layer_paths.last() {
                for t in &image_tags {
                    if let Ok(r) = Reference::parse_tagged(t) {
                        repositories.entry(r.familiar_name()).or_default().insert(
                            r.tag.clone().unwrap_or_default(),
                            top.trim_end_matches("/layer.tar").to_string(),
                        );
                    }
                }
            }
            manifest.push(ManifestEntry {
                config: config_path,
                repo_tags: (!image_tags.is_empty()).then_some(image_tags),
                layers: layer_paths,
            });
        }
        let m = serde_json::to_vec(&manifest).map_err(|e| ImageError::BadArchive(e.to_string()))?;
        w.entry(
            "manifest.json",
            tar::EntryType::Regular,
            m.len() as u64,
            0,
            &mut |o| {
                o.write_all(&m)
                    .map_err(ImageError::io("writing", "archive"))?;
                Ok(m.len() as u64)
            },
        )?;
        if !repositories.is_empty() {
            let r = serde_json::to_vec(&repositories)
                .map_err(|e| ImageError::BadArchive(e.to_string()))?;
            w.entry(
                "repositories",
                tar::EntryType::Regular,
                r.len() as u64,
                0,
                &mut |o| {
                    o.write_all(&r)
                        .map_err(ImageError::io("writing", "archive"))?;
                    Ok(r.len() as u64)
                },
            )?;
        }
        w.out
            .write_all(&[0u8; 1024])
            .map_err(ImageError::io("writing", "archive"))?;
        w.out
            .flush()
            .map_err(ImageError::io("writing", "archive"))?;
        Ok(())
    }
}

struct ArchiveWriter<'a> {
    out: &'a mut dyn Write,
    written: std::collections::HashSet<String>,
}

type Body<'b> = dyn FnMut(&mut dyn Write) -> Result<u64> + 'b;

impl ArchiveWriter<'_> {
    fn entry(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        size: u64,
        mtime: u64,
        body: &mut Body<'_>,
    ) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)
            .map_err(ImageError::io("archive path", path))?;
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(mtime);
        h.set_cksum();
        self.out
            .write_all(h.as_bytes())
            .map_err(ImageError::io("writing", "archive"))?;
        let written = body(self.out)?;
        if written != size {
            return Err(ImageError::Export {
                chain_id: path.to_string(),
                reason: format!("wrote {written} bytes, expected {size}"),
            });
        }
        let pad = (512 - size % 512) % 512;
        self.out
            .write_all(&vec![0u8; pad as usize])
            .map_err(ImageError::io("writing", "archive"))?;
        Ok(())
    }
}
