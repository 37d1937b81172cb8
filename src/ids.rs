//! The names of this machine's users and groups, for the listings that show them (ls,
//! stat, --json): getpwuid_r and getgrgid_r, which read /etc/passwd and /etc/group or
//! whatever NSS says.

/// This machine's name of user `uid`.
pub(crate) fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: getpwuid_r fills `pwd` and `buf` (of the length given); `found` points at
    // `pwd` or is null; the name is read before either goes away.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found);
        if rc != 0 || found.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// This machine's name of group `gid`.
pub(crate) fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: as in `user_name`, with getgrgid_r.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut found: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut found);
        if rc != 0 || found.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(grp.gr_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}
