// @peculiar/x509 needs reflect-metadata loaded before it is imported.
import 'reflect-metadata';
