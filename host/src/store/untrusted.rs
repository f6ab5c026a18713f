//! Opening SQLite files this process did not just create: the previous snapshot, a partial
//! file left by an earlier run, the input of `export`. Anyone who can write the data directory
//! can put code in such a file (a trigger fires on our writes, a view answers our reads, a
//! function in a CHECK or a generated column runs when a row is touched), so each is opened
//! with SQLite's own defences on and refused when it holds code connector-host never writes.

use std::path::Path;

use anyhow::Context as _;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

/// Opens `path` with the defences of [`distrust`] on, then refuses it if it holds a trigger or
/// a view (see [`refuse_code`]).
pub fn open_untrusted(path: &Path, flags: OpenFlags) -> anyhow::Result<Connection> {
    let connection =
        Connection::open_with_flags(path, flags).with_context(|| format!("cannot open {}", path.display()))?;
    distrust(&connection).with_context(|| format!("cannot open {} safely", path.display()))?;
    refuse_code(&connection, "main", path)?;
    Ok(connection)
}

/// Turns on SQLite's defences for a file whose schema we did not write: functions that are
/// not innocuous cannot run from the schema (`trusted_schema` off), triggers and views do not
/// work at all, and the schema cannot be edited as data (defensive mode). They hold for every
/// database later attached to this connection too.
pub fn distrust(connection: &Connection) -> rusqlite::Result<()> {
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    Ok(())
}

/// Fails when the database `schema` of `connection` (`main`, or an attached name) holds a
/// trigger or a view. connector-host never creates either, so one means something else changed
/// the file: it is refused rather than used or silently replaced, so it can be looked at.
pub fn refuse_code(connection: &Connection, schema: &str, path: &Path) -> anyhow::Result<()> {
    let query = format!("SELECT type, name FROM \"{schema}\".sqlite_master WHERE type IN ('trigger', 'view') LIMIT 1");
    let found = match connection.query_row(&query, [], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))) {
        Ok((kind, name)) => Some(format!("a {kind} named {name:?}")),
        Err(rusqlite::Error::QueryReturnedNoRows) => None,
        // With trusted_schema off, SQLite will not even load a schema that calls such a function.
        Err(error) if error.to_string().contains("unsafe use of") => {
            Some(format!("a schema that calls a function ({error})"))
        }
        Err(error) => {
            return Err(error).with_context(|| {
                format!("cannot read the schema of {}: is it a connector-host snapshot?", path.display())
            });
        }
    };
    match found {
        None => Ok(()),
        Some(what) => anyhow::bail!(
            "{} holds {what}, which connector-host never writes: the file was changed by something else. \
             Refusing to use it; inspect it, then move it away (the next sync is then a full one)",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(sql: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("input.db");
        let connection = Connection::open(&path).expect("a database");
        connection.execute_batch(sql).expect("the schema");
        (dir, path)
    }

    /// The error `open_untrusted` gives for a file made with `sql`.
    fn refusal(sql: &str, flags: OpenFlags) -> String {
        let (_dir, path) = file_with(sql);
        format!("{:#}", open_untrusted(&path, flags).expect_err("the file is refused"))
    }

    #[test]
    fn a_file_with_a_trigger_is_refused_naming_it() {
        let message = refusal(
            "CREATE TABLE grants (id TEXT); CREATE TABLE loot (id TEXT);
             CREATE TRIGGER copy_out AFTER INSERT ON grants BEGIN INSERT INTO loot VALUES (new.id); END;",
            OpenFlags::SQLITE_OPEN_READ_WRITE,
        );
        assert!(message.contains("trigger named \"copy_out\"") && message.contains("move it away"), "{message}");
    }

    #[test]
    fn a_file_with_a_view_is_refused_naming_it() {
        let sql = "CREATE TABLE real (id TEXT); CREATE VIEW resources AS SELECT id FROM real;";
        let message = refusal(sql, OpenFlags::SQLITE_OPEN_READ_ONLY);
        assert!(message.contains("view named \"resources\""), "{message}");
    }

    #[test]
    fn a_function_that_is_not_innocuous_does_not_run_from_the_schema() {
        // rtreedepth() is registered without SQLITE_INNOCUOUS: with trusted_schema on, every
        // insert would run it on whatever blob the file's author chose; with it off, SQLite
        // refuses the schema.
        let (_dir, path) = file_with("CREATE TABLE grants (id TEXT CHECK (rtreedepth(x'00000000') IS NOT NULL));");
        let trusting = Connection::open(&path).expect("opens");
        trusting.execute("INSERT INTO grants VALUES ('a')", []).expect("a trusting connection runs the function");
        drop(trusting);
        let message = format!("{:#}", open_untrusted(&path, OpenFlags::SQLITE_OPEN_READ_WRITE).expect_err("refused"));
        assert!(message.contains("unsafe use of rtreedepth()") && message.contains("move it away"), "{message}");
    }

    #[test]
    fn triggers_do_not_fire_even_if_one_slips_past_the_check() {
        let (_dir, path) = file_with("CREATE TABLE grants (id TEXT); CREATE TABLE loot (id TEXT);");
        let connection = open_untrusted(&path, OpenFlags::SQLITE_OPEN_READ_WRITE).expect("a clean file");
        // Added after the check, by another writer of the same file.
        Connection::open(&path)
            .expect("another writer")
            .execute_batch(
                "CREATE TRIGGER copy_out AFTER INSERT ON grants BEGIN INSERT INTO loot VALUES (new.id); END;",
            )
            .expect("a trigger");
        connection.execute("INSERT INTO grants VALUES ('g')", []).expect("the insert itself works");
        let loot: i64 = connection.query_row("SELECT count(*) FROM loot", [], |row| row.get(0)).expect("readable");
        assert_eq!(loot, 0, "the trigger did not run");
    }
}
