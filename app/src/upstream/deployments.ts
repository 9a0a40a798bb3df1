/** One Azure deployment and the model names a client may ask for to reach it. */
export interface AzureDeployment {
  deployment: string;
  models: string[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/**
 * Azure names some models without the dot OpenAI uses (`gpt-35-turbo` for `gpt-3.5-turbo`),
 * so a bare deployment name also serves the OpenAI spelling.
 */
export function openAiSpelling(azureName: string): string {
  return azureName.replace(/^gpt-35(?=-|$)/, 'gpt-3.5');
}

/**
 * Parses AZURE_DEPLOYMENT_NAMES items: `deployment` serves the model of that name (and its
 * OpenAI spelling); `model=deployment` serves exactly that model. Returns an error message for
 * the first malformed item instead of throwing.
 */
export function parseDeployments(items: string[]): AzureDeployment[] | { error: string } {
  const result: AzureDeployment[] = [];
  for (const item of items) {
    const parts = item.split('=').map((p) => p.trim());
    const [first, second] = parts;
    if (
      parts.length > 2 ||
      !first ||
      !NAME.test(first) ||
      (parts.length === 2 && !(second && NAME.test(second)))
    ) {
      return {
        error: `item ${result.length + 1} must be "deployment" or "model=deployment" (letters, digits, . _ : -)`,
      };
    }
    if (second !== undefined) {
      result.push({ deployment: second, models: [first] });
    } else {
      const models = [...new Set([first, openAiSpelling(first)])];
      result.push({ deployment: first, models });
    }
  }
  return result;
}
