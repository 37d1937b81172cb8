//! Path-level conveniences of [`Client`]: open or create a [`File`], and the operations of
//! `std::fs` by path (remove, rmdir, mkdir, rename).
//!
//! Each walks the path with LOOKUPs from the export root and then calls one handle-level
//! operation of the facade; kept apart from `client.rs` so that the facade does not depend on
//! `File`, which itself holds a `Client`.

use nfsio_proto::nfs3::{CreateHow, Fattr, FileHandle, FileType, Nfs3Status, Sattr};

use crate::client::{Client, Created};
use crate::error::{NfsError, NfsResult};
use crate::file::File;
use crate::url::encode_path;

impl Client {
    /// Opens an existing regular file for reading and writing.
    pub async fn open(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> NfsResult<File> {
        let (handle, attributes) = self.lookup_path(path).await?;
        self.open_handle(handle, attributes, path)
    }

    /// Opens the file `handle` names, with the attributes just fetched for it (GETATTR or
    /// LOOKUP), in the client's cache; `label` names it in messages. A directory is
    /// NFS3ERR_ISDIR.
    pub fn open_handle(
        &self,
        handle: FileHandle,
        attributes: Fattr,
        label: &(impl AsRef<[u8]> + ?Sized),
    ) -> NfsResult<File> {
        match attributes.file_type {
            FileType::Directory => Err(NfsError::Status {
                proc_name: "LOOKUP",
                status: Nfs3Status::IsDir,
            }),
            _ => File::new(
                self.clone(),
                handle,
                attributes,
                &encode_path(label.as_ref()),
            ),
        }
    }

    /// Creates a regular file (truncating it if it exists), like `std::fs::File::create`.
    pub async fn create_file(
        &self,
        path: &(impl AsRef<[u8]> + ?Sized),
        mode: u32,
    ) -> NfsResult<File> {
        let (dir, name) = self.lookup_parent(path).await?;
        let created = self
            .create(
                &dir,
                name,
                CreateHow::Unchecked(Sattr {
                    mode: Some(mode),
                    size: Some(0),
                    ..Sattr::default()
                }),
            )
            .await?;
        self.file_from(created, path.as_ref()).await
    }

    /// Creates a regular file that must not exist yet (GUARDED create: NFS3ERR_EXIST if it
    /// does), like `OpenOptions::create_new`.
    pub async fn create_new_file(
        &self,
        path: &(impl AsRef<[u8]> + ?Sized),
        mode: u32,
    ) -> NfsResult<File> {
        let (dir, name) = self.lookup_parent(path).await?;
        let created = self
            .create(
                &dir,
                name,
                CreateHow::Guarded(Sattr {
                    mode: Some(mode),
                    ..Sattr::default()
                }),
            )
            .await?;
        self.file_from(created, path.as_ref()).await
    }

    async fn file_from(&self, created: Created, path: &[u8]) -> NfsResult<File> {
        let attributes = match created.attributes {
            Some(attributes) => attributes,
            None => self.getattr(&created.handle).await?,
        };
        File::new(self.clone(), created.handle, attributes, &encode_path(path))
    }

    /// Removes the file at `path`.
    pub async fn remove_path(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> NfsResult<()> {
        let (dir, name) = self.lookup_parent(path).await?;
        self.remove(&dir, name).await.map(drop)
    }

    /// Removes the empty directory at `path`.
    pub async fn rmdir_path(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> NfsResult<()> {
        let (dir, name) = self.lookup_parent(path).await?;
        self.rmdir(&dir, name).await.map(drop)
    }

    /// Creates the directory at `path` with `mode`.
    pub async fn mkdir_path(
        &self,
        path: &(impl AsRef<[u8]> + ?Sized),
        mode: u32,
    ) -> NfsResult<Created> {
        let (dir, name) = self.lookup_parent(path).await?;
        self.mkdir(
            &dir,
            name,
            Sattr {
                mode: Some(mode),
                ..Sattr::default()
            },
        )
        .await
    }

    /// Renames `from` to `to` (both paths inside the export).
    pub async fn rename_path(
        &self,
        from: &(impl AsRef<[u8]> + ?Sized),
        to: &(impl AsRef<[u8]> + ?Sized),
    ) -> NfsResult<()> {
        let (from_dir, from_name) = self.lookup_parent(from).await?;
        let (to_dir, to_name) = self.lookup_parent(to).await?;
        self.rename(&from_dir, from_name, &to_dir, to_name)
            .await
            .map(drop)
    }
}
