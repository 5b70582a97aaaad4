//! The mini program's client of this app: the weapp SDK (`framework/sdk`, plain
//! JavaScript on `wx.request`) with `types/api.d.ts` generated from the app's own
//! OpenAPI document, so every app ships a client typed for exactly its routes.
//! `cargo run -- sdk miniprogram/weapp-sdk` writes it; a test keeps it current
//! ([`Sdk::stale_files`], `weapp::testing::TestApp::assert_sdk_current`).

use std::path::Path;

use serde_json::Value;

mod typescript;

pub use typescript::declarations;

/// The SDK's hand-written files, as the framework was built with them.
const STATIC_FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("../../sdk/README.md")),
    ("package.json", include_str!("../../sdk/package.json")),
    ("src/index.js", include_str!("../../sdk/src/index.js")),
    ("src/realtime.js", include_str!("../../sdk/src/realtime.js")),
    ("src/sha256.js", include_str!("../../sdk/src/sha256.js")),
    (
        "types/index.d.ts",
        include_str!("../../sdk/types/index.d.ts"),
    ),
];

/// Where the generated declarations go in the SDK's folder.
pub const DECLARATIONS: &str = "types/api.d.ts";

/// The SDK's files for one app: path inside the SDK's folder, and contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdk {
    files: Vec<(&'static str, String)>,
}

impl Sdk {
    /// The SDK typed for the routes `doc` (the app's OpenAPI document) describes.
    pub fn for_document(doc: &Value) -> Sdk {
        let mut files: Vec<(&'static str, String)> = STATIC_FILES
            .iter()
            .map(|(path, text)| (*path, (*text).to_owned()))
            .collect();
        files.push((DECLARATIONS, declarations(doc)));
        Sdk { files }
    }

    /// Every file, by its path inside the SDK's folder.
    pub fn files(&self) -> &[(&'static str, String)] {
        &self.files
    }

    /// Writes every file under `dir`, creating folders; other files there are kept.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        for (path, text) in &self.files {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, text)?;
        }
        Ok(())
    }

    /// The files under `dir` that are missing or differ from this SDK's.
    pub fn stale_files(&self, dir: &Path) -> Vec<&'static str> {
        self.files
            .iter()
            .filter(|(path, text)| {
                std::fs::read_to_string(dir.join(path)).ok().as_ref() != Some(text)
            })
            .map(|(path, _)| *path)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_are_current_and_an_edit_makes_one_stale() {
        let dir = std::env::temp_dir().join(format!("weapp-sdk-{}", std::process::id()));
        let doc = serde_json::json!({"paths": {}, "components": {"schemas": {}}});
        let sdk = Sdk::for_document(&doc);
        assert_eq!(
            sdk.stale_files(&dir).len(),
            sdk.files().len(),
            "nothing written yet"
        );
        sdk.write(&dir).unwrap();
        assert!(sdk.stale_files(&dir).is_empty());
        std::fs::write(dir.join("src/index.js"), "// edited").unwrap();
        assert_eq!(sdk.stale_files(&dir), ["src/index.js"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
