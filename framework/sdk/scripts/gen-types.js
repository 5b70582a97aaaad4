#!/usr/bin/env node
// Writes types/api.d.ts from a weapp app's OpenAPI document: one interface per
// schema, the error codes, and each operation's body and answer types.
//   node scripts/gen-types.js <http://host:port/api/openapi.json | file.json> [out]
// The SDK's tests regenerate it from the running example app and fail on drift.
'use strict'

const fs = require('fs')
const path = require('path')

function refName(ref) {
  return ref.replace('#/components/schemas/', '')
}

function typeOf(schema, indent) {
  if (!schema || typeof schema !== 'object') return 'unknown'
  if (schema.$ref) return refName(schema.$ref)
  if (schema.allOf) return schema.allOf.map((s) => typeOf(s, indent)).join(' & ')
  if (schema.oneOf || schema.anyOf) return (schema.oneOf || schema.anyOf).map((s) => typeOf(s, indent)).join(' | ')
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ')
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : []
  if (types.length === 0) return schema.properties ? objectType(schema, indent) : 'unknown'
  return types
    .map((t) => {
      switch (t) {
        case 'null': return 'null'
        case 'string': return 'string'
        case 'integer':
        case 'number': return 'number'
        case 'boolean': return 'boolean'
        case 'array': return `Array<${typeOf(schema.items, indent)}>`
        case 'object': return schema.properties ? objectType(schema, indent) : 'Record<string, unknown>'
        default: return 'unknown'
      }
    })
    .join(' | ')
}

function objectType(schema, indent) {
  const required = new Set(schema.required || [])
  const pad = '  '.repeat(indent + 1)
  const fields = Object.keys(schema.properties).sort().map((name) => {
    const property = schema.properties[name]
    const doc = property.description ? `${pad}/** ${property.description.replace(/\*\//g, '* /')} */\n` : ''
    const optional = required.has(name) ? '' : '?'
    return `${doc}${pad}${name}${optional}: ${typeOf(property, indent + 1)}`
  })
  return `{\n${fields.join('\n')}\n${'  '.repeat(indent)}}`
}

function generate(doc) {
  const out = ['// Generated from the OpenAPI document by scripts/gen-types.js: do not edit.', '']
  const schemas = doc.components.schemas
  for (const name of Object.keys(schemas).sort()) {
    const schema = schemas[name]
    if (schema.description) out.push(`/** ${schema.description.replace(/\*\//g, '* /')} */`)
    const body = typeOf(schema, 0)
    out.push(body.startsWith('{') ? `export interface ${name} ${body}` : `export type ${name} = ${body}`, '')
  }
  const codes = new Set()
  const operations = []
  for (const p of Object.keys(doc.paths).sort()) {
    for (const method of Object.keys(doc.paths[p]).sort()) {
      const op = doc.paths[p][method]
      let answer = 'null'
      for (const [status, response] of Object.entries(op.responses)) {
        const schema = response.content && response.content['application/json'] && response.content['application/json'].schema
        if (/^[45]/.test(status) && schema) {
          for (const code of (schema.properties && schema.properties.code && schema.properties.code.enum) || []) codes.add(code)
        } else if (/^2/.test(status) && schema && answer === 'null') {
          answer = typeOf(schema, 2)
        }
      }
      const requestSchema = op.requestBody && op.requestBody.content['application/json'].schema
      const body = requestSchema ? typeOf(requestSchema, 2) : 'never'
      operations.push(`  '${method.toUpperCase()} ${p}': { body: ${body}; answer: ${answer} }`)
    }
  }
  out.push('/** Every error `code` an operation documents. */')
  out.push(`export type ErrorCode =\n${[...codes].sort().map((c) => `  | ${JSON.stringify(c)}`).join('\n')}`, '')
  out.push("/** Each operation's request body and successful answer, by `METHOD path`. */")
  out.push(`export interface Operations {\n${operations.join('\n')}\n}`, '')
  return out.join('\n')
}

async function load(source) {
  if (/^https?:/.test(source)) return (await fetch(source)).json()
  return JSON.parse(fs.readFileSync(source, 'utf8'))
}

if (require.main === module) {
  const [source, target = path.join(__dirname, '..', 'types', 'api.d.ts')] = process.argv.slice(2)
  if (!source) {
    console.error('usage: gen-types.js <openapi.json URL or file> [out]')
    process.exit(2)
  }
  load(source).then((doc) => fs.writeFileSync(target, generate(doc)))
}

module.exports = { generate }
