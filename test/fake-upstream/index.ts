// Public API of the fake OpenAI / Azure OpenAI upstream used by tests and benchmarks.
export type {
  BehaviorKind,
  Endpoint,
  KeyBehavior,
  KeyBehaviorInput,
  RecordedRequest,
  RequestOutcome,
  StreamLatch,
  Surface,
} from './control.ts';
export { DEFAULT_MODELS, embedVector, float32Base64 } from './embeddings-format.ts';
export { azureErrors, type ErrorReply, maskKey, openaiErrors } from './errors.ts';
export { countTokens, DEFAULT_ANSWER, splitAnswer } from './openai-format.ts';
export {
  DEFAULT_DEPLOYMENTS,
  type FakeUpstream,
  type FakeUpstreamOptions,
  startFakeUpstream,
} from './server.ts';
