// Seed 004 spells a strategy `{ type, merge }`; the runtime takes `strategy` and `merge`
// apart. Both spellings are accepted and normalised here.
import type { MergeFn as RuntimeMergeFn, MutateOptions } from '../wasm/tandem.js'
import type { MergeFn, MutationOptions, StrategyOption } from './types.js'

export interface RuntimeStrategy {
  strategy?: 'ordered' | 'parallel'
  merge?: RuntimeMergeFn
}

export function normaliseStrategy<T extends object>(
  strategy: StrategyOption<T> | undefined,
  merge: MergeFn<T> | undefined,
): RuntimeStrategy {
  const type = typeof strategy === 'object' ? strategy.type : strategy
  const chosenMerge = (typeof strategy === 'object' ? strategy.merge : undefined) ?? merge
  const result: RuntimeStrategy = {}
  if (type !== undefined) result.strategy = type
  // A merge function stands for the records' type: the runtime sees plain records.
  if (chosenMerge !== undefined) result.merge = chosenMerge as unknown as RuntimeMergeFn
  return result
}

export function normaliseOptions<T extends object>(options: MutationOptions<T> | undefined): MutateOptions | undefined {
  if (!options) return undefined
  const result: MutateOptions = normaliseStrategy(options.strategy, options.merge)
  if (options.metadata !== undefined) result.metadata = options.metadata
  return result
}
