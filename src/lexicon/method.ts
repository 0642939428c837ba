import { z } from 'zod'

type AnyObject = z.ZodObject<z.ZodRawShape>

export interface MethodSpec<
  P extends AnyObject = AnyObject,
  I extends z.ZodType | undefined = z.ZodType | undefined,
  O extends z.ZodType | undefined = z.ZodType | undefined,
  E extends string = string,
> {
  nsid: string
  type: 'query' | 'procedure'
  params: P
  input: I
  output: O
  /** Lexicon-declared error names: the only names a handler's `fail` accepts. */
  errors: readonly E[]
  /** `application/x-ndjson`: the handler gets the request body as a stream, unparsed. */
  inputEncoding?: 'application/json' | 'application/x-ndjson'
  /** `application/x-ndjson`: the handler returns a stream of lines, sent as it is produced. */
  outputEncoding?: 'application/json' | 'application/x-ndjson'
}

const noParams = z.object({})

export function defineQuery<
  O extends z.ZodType | undefined,
  P extends AnyObject = typeof noParams,
  const E extends string = never,
>(spec: {
  nsid: string
  params?: P
  output: O
  errors?: readonly E[]
  outputEncoding?: MethodSpec['outputEncoding']
}): MethodSpec<P, undefined, O, E> {
  return {
    ...spec,
    type: 'query',
    params: (spec.params ?? noParams) as P,
    input: undefined,
    errors: spec.errors ?? [],
  }
}

export function defineProcedure<
  I extends z.ZodType | undefined,
  O extends z.ZodType | undefined = undefined,
  P extends AnyObject = typeof noParams,
  const E extends string = never,
>(spec: {
  nsid: string
  params?: P
  input: I
  output?: O
  errors?: readonly E[]
  inputEncoding?: MethodSpec['inputEncoding']
}): MethodSpec<P, I, O, E> {
  return {
    ...spec,
    type: 'procedure',
    params: (spec.params ?? noParams) as P,
    output: spec.output as O,
    errors: spec.errors ?? [],
  }
}
