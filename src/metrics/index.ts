export { rocAuc, rocCurve, curveArea, type RocPoint } from './roc.js';
export { accuracy, confusionMatrix, type ConfusionMatrix } from './classification.js';
export { bootstrapCi, quantile, type BootstrapOptions, type ConfidenceInterval } from './bootstrap.js';
export { dice, iou, resampleMask, type MaskGrid } from './segmentation.js';
