// The CPU engine's kernels: pure functions over pointers into the one
// imported (shared) memory. src/cpu/ owns the memory plan and threads.
export { matVecF32, matVecF16, matVecQ8, matVecQ4, quantizeInput, quantizeBlocks, dequantizeRows } from "./matvec";
export { matMat, matMatFormat, matMatScratchBytes, prepareTokens, prepareTokenGroups, preparedBytes, prepareStrassenTokens, matMatStrassen, strassenTempsBytes } from "./matmat";
export { rmsNorm, rmsNormRows, layerNorm, embed, shortConvStep, rmsConvStep, decayKey, glaStep, tokenMixerHeads, addBias, glu, matVecGlu, touchLines, argmax, topK } from "./ops";
export { readBandwidth, macPeak, macPeakPerRound } from "./probe";
export { quantizeRows, firstNonF16 } from "./quantize";
