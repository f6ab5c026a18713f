//! Which tenants this replica serves, so several replicas share the tenants without a
//! scheduler of their own: replica N of M takes the tenants whose stable hash of the id, modulo
//! M, is N. A StatefulSet gives each pod a stable ordinal, and may pass the pod name itself.

use anyhow::{anyhow, bail};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `index` is a number (`3`) or a pod name ending in one (`connector-host-3`).
    pub fn parse(index: &str, count: u32) -> anyhow::Result<Shard> {
        if count == 0 {
            bail!("--shard-count must be at least 1");
        }
        let digits_at = index.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let digits = &index[digits_at..];
        if digits.is_empty() {
            bail!(
                "--shard-index {index:?} is neither a number nor a name ending in one (like connector-host-3, a StatefulSet pod name)"
            );
        }
        let index: u32 =
            digits.parse().map_err(|_| anyhow!("--shard-index {index:?} ends in a number too large for a shard"))?;
        if index >= count {
            bail!("--shard-index {index} is not below --shard-count {count}: indexes run from 0 to {}", count - 1);
        }
        Ok(Shard { index, count })
    }

    pub fn owner_of(&self, tenant_id: &str) -> u32 {
        (fnv1a(tenant_id.as_bytes()) % u64::from(self.count)) as u32
    }

    pub fn owns(&self, tenant_id: &str) -> bool {
        self.owner_of(tenant_id) == self.index
    }
}

/// FNV-1a, 64 bits: stable across releases and platforms, unlike the standard library's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_name_gives_its_ordinal() {
        assert_eq!(Shard::parse("connector-host-3", 4).unwrap(), Shard { index: 3, count: 4 });
        assert_eq!(Shard::parse("2", 4).unwrap(), Shard { index: 2, count: 4 });
        assert!(Shard::parse("connector-host", 4).unwrap_err().to_string().contains("StatefulSet"));
        assert!(Shard::parse("connector-host-4", 4).unwrap_err().to_string().contains("below --shard-count"));
    }

    #[test]
    fn every_tenant_has_exactly_one_owner_and_the_hash_is_stable() {
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let ids: Vec<String> = (0..200).map(|n| format!("tenant-{n}")).collect();
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        for id in &ids {
            assert_eq!(shards.iter().filter(|shard| shard.owns(id)).count(), 1, "{id}");
        }
        let first = shards[0];
        let owned = ids.iter().filter(|id| first.owns(id)).count();
        assert!((40..=95).contains(&owned), "a share of roughly a third, got {owned} of 200");
    }
}
