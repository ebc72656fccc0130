//! Opt-in pruning of finished transactions (seed 004 keeps all history by default).

use crate::effect::Effect;
use crate::engine::Engine;

impl Engine {
    pub(crate) fn prune_history(&mut self, now: u64) {
        let (max_finished, max_age_ms) = (self.history.max_finished, self.history.max_age_ms);
        if max_finished.is_none() && max_age_ms.is_none() {
            self.finished.clear(); // Nothing is ever pruned: no need to remember candidates.
            return;
        }
        while let Some(&seq) = self.finished.front() {
            let over_count = max_finished.is_some_and(|max| self.finished.len() > max);
            let finished_at = self.txs[&seq].tx.updated_at;
            let too_old = max_age_ms.is_some_and(|age| now.saturating_sub(finished_at) > age);
            if !(over_count || too_old) {
                break;
            }
            self.finished.pop_front();
            let slot = self.txs.remove(&seq).expect("finished transactions are live");
            self.tx_ids.remove(&slot.tx.id);
            self.effects.push_back(Effect::EraseTransaction { transaction: slot.tx.id });
        }
    }
}
